"""An org's members hold its paying customer's roles while they are members, and lose them when they leave."""

from __future__ import annotations

from typing import Any

import pytest

from common import keys
from common.errors import RetryableError
from tests.worker.conftest import World
from tests.worker.convergence.failed_reads import fail_reads_of
from tests.worker.convergence.test_convergence import org_member, paying_org, personal, user_updated
from tests.worker.events.test_handlers import OLD, billing, user_created
from worker.customers.park import link_customer
from worker.events.handlers import converge_customer, handle_event


def test_a_member_who_left_keeps_the_orgs_role_if_the_orgs_pass_failed_once(world: World) -> None:
    paying_org(world, "org_acme", "customer_org", "plan_client", "kp_1", "kp_2")
    world.kinde.members["org_acme"].remove("kp_2")  # Kinde keeps the roles on the membership record
    world.kinde.users["kp_2"]["organizations"].remove("org_acme")
    fail_reads_of(world, "org_acme", "kp_2")
    with pytest.raises(RetryableError):
        converge_customer(world.deps, "customer_org", "reconcile", "msg_1")
    converge_customer(world.deps, "customer_org", "reconcile", "msg_1")
    converge_customer(world.deps, "customer_org", "reconcile", "msg_2")  # and any later pass

    assert world.kinde.role_keys("org_acme", "kp_2") == []


# --- 2. member=None trusts an org record's target list, which misses members added since ---


def test_a_new_member_keeps_the_orgs_role_when_a_personal_customer_leaves_it(world: World) -> None:
    paying_org(world, "org_acme", "customer_org", "plan_client", "kp_1")
    org_member(world, "org_acme", "kp_2")  # joins after the org's last pass
    world.kinde.users["kp_2"]["organizations"] = ["org_acme"]
    personal(world, "kp_2", "customer_me", "plan_subscriber")
    assert handle_event(world.deps, user_updated("ev_u2", "kp_2"), OLD) == "converged"
    assert world.kinde.role_keys("org_acme", "kp_2") == ["role_client", "role_subscriber"]

    world.kinde.add_user("kp_3", None, org="org_other")
    link_customer(world.deps.parking, "customer_me", user_id="kp_3", org_code="org_other")  # on-call moves it
    converge_customer(world.deps, "customer_me", "link_moved", "msg_1")

    assert world.kinde.role_keys("org_other", "kp_3") == ["role_subscriber"]
    assert world.kinde.role_keys("org_acme", "kp_2") == ["role_client"]


def test_a_borrowed_org_record_does_not_uncover_the_orgs_other_members(world: World) -> None:
    paying_org(world, "org_acme", "customer_org", "plan_client", "kp_1", "kp_2")
    world.kinde.users["kp_1"]["organizations"] = ["org_acme"]
    world.kinde.users["kp_2"]["organizations"] = ["org_acme"]
    world.redis.delete(keys.customer_grants("customer_org"))  # as after the upgrade: no record yet
    # kp_1's personal customer converges (org_acme, kp_1): the org's record is borrowed there, with that target only
    personal(world, "kp_1", "customer_a", "plan_subscriber")
    handle_event(world.deps, user_updated("ev_u1", "kp_1"), OLD)
    # kp_2's personal customer is moved by on-call to another user: its old target is converged without it
    personal(world, "kp_2", "customer_b", "plan_subscriber")
    handle_event(world.deps, user_updated("ev_u2", "kp_2"), OLD)
    assert world.kinde.role_keys("org_acme", "kp_2") == ["role_client", "role_subscriber"]
    world.kinde.add_user("kp_3", None, org="org_other")
    link_customer(world.deps.parking, "customer_b", user_id="kp_3", org_code="org_other")
    converge_customer(world.deps, "customer_b", "link_moved", "msg_1")

    assert world.kinde.role_keys("org_acme", "kp_2") == ["role_client"]


# --- 5. an event's org fills a gap, the next user look-up empties it again: the roles move each time ---


def test_a_user_lookup_without_an_org_does_not_undo_the_org_an_event_filled_in(world: World) -> None:
    world.kinde.add_user("kp_1", "customer_1")  # in org_default ...
    org_member(world, "org_shop", "kp_1")  # ... and org_shop: the look-up cannot tell which org (no KINDE_ORG_CODE)
    world.kinde.set_plan("customer_1", "plan_subscriber")
    handle_event(world.deps, user_created("ev_u", "kp_1"), OLD)
    assert world.kinde.role_keys("org_default", "kp_1") == ["role_subscriber"]

    seen = []
    for n in range(2):
        handle_event(world.deps, billing(f"ev_b{n}", "customer_1", user_id="kp_1", org_code="org_shop"), OLD)
        seen.append((world.kinde.role_keys("org_default", "kp_1"), world.kinde.role_keys("org_shop", "kp_1")))
        handle_event(world.deps, user_updated(f"ev_u{n}", "kp_1"), OLD)  # e.g. a profile edit
        seen.append((world.kinde.role_keys("org_default", "kp_1"), world.kinde.role_keys("org_shop", "kp_1")))
    # nothing about the customer changed after the first billing event: its roles must stay put
    assert len(set(map(str, seen))) == 1, seen


# --- 6. rolling deploy: an org link written by an old worker after index_payers ran is never a payer ---


def test_an_org_link_written_by_an_old_worker_after_the_payer_index_still_covers_its_members(world: World) -> None:
    world.deps.links.index_payers()  # a new worker boots first: schema 2
    paying_org(world, "org_acme", "customer_org", "plan_client", "kp_1")
    world.redis.srem(keys.org_payers("org_acme"), "customer_org")  # as an old worker's put leaves it
    world.deps.links.index_payers()  # the next boot: already schema 2, nothing indexed
    personal(world, "kp_1", "customer_me", "plan_subscriber")
    handle_event(world.deps, user_updated("ev_u1", "kp_1"), OLD)
    states = []
    for n, customer in enumerate(["customer_me", "customer_org", "customer_me"]):
        converge_customer(world.deps, customer, "reconcile", f"msg_{n}")
        states.append(world.kinde.role_keys("org_acme", "kp_1"))
    assert states == [["role_client", "role_subscriber"]] * 3, states


# --- _is_member failing transiently while leaving ---


def test_a_leave_whose_membership_lookup_fails_once_is_retried(world: World) -> None:
    paying_org(world, "org_acme", "customer_org", "plan_client", "kp_1")
    world.kinde.users["kp_1"]["organizations"] = ["org_acme"]
    personal(world, "kp_1", "customer_me", "plan_subscriber")
    handle_event(world.deps, user_updated("ev_u1", "kp_1"), OLD)
    world.kinde.users["kp_1"]["organizations"] = ["org_acme"]
    world.kinde.add_user("kp_3", None, org="org_other")
    link_customer(world.deps.parking, "customer_me", user_id="kp_3", org_code="org_other")
    original, left = world.kinde.get_user, {"n": 1}

    def flaky(user_id: str) -> dict[str, Any]:
        if left["n"]:
            left["n"] -= 1
            raise RetryableError("Kinde answered 503", reason="kinde_503")
        return original(user_id)

    world.kinde.get_user = flaky  # type: ignore[method-assign]
    with pytest.raises(RetryableError):
        converge_customer(world.deps, "customer_me", "link_moved", "msg_1")
    converge_customer(world.deps, "customer_me", "link_moved", "msg_1")
    assert world.kinde.role_keys("org_acme", "kp_1") == ["role_client"]
    assert world.kinde.role_keys("org_other", "kp_3") == ["role_subscriber"]


# --- a left target Kinde refuses (a 4xx not in GONE) blocks every later pass of the customer ---


def test_a_left_target_kinde_refuses_does_not_block_the_customer_forever(world: World) -> None:
    from common.errors import PermanentError

    world.kinde.add_user("kp_1", None)
    world.kinde.set_plan("customer_1", "plan_subscriber")
    # the first billing event carried a user id Kinde does not accept (e.g. a malformed or foreign id)
    original = world.kinde.user_roles

    def refuses(org: str, user: str) -> list[dict[str, Any]]:
        if user == "kp_bogus":
            raise PermanentError("Kinde answered 400 INVALID_USER_ID", reason="kinde_INVALID_USER_ID")
        return original(org, user)

    world.kinde.user_roles = refuses  # type: ignore[method-assign]
    with pytest.raises(PermanentError):
        handle_event(world.deps, billing("ev_0", "customer_1", user_id="kp_bogus"), OLD)
    link_customer(world.deps.parking, "customer_1", user_id="kp_1")  # on-call fixes the link
    converge_customer(world.deps, "customer_1", "link_moved", "msg_1")  # raises today, and at every later pass
    assert world.kinde.role_keys("org_default", "kp_1") == ["role_subscriber"]
    world.kinde.set_plan("customer_1", "plan_client")
    assert handle_event(world.deps, billing("ev_1", "customer_1"), OLD) == "converged"
