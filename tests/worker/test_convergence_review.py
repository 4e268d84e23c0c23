"""Sequences a second engineer found that broke the first cut of the convergence model: each ended wrong."""

from __future__ import annotations

from typing import Any

import pytest

from common import keys
from common.errors import RetryableError
from tests.worker.conftest import World
from tests.worker.convergence.test_convergence import org_member, paying_org, personal, user_updated
from tests.worker.events.test_handlers import OLD, billing, user_created
from worker.customers.park import link_customer
from worker.events.handlers import converge_customer, handle_event


def fail_reads_of(world: World, org: str, user: str, times: int = 1) -> None:
    """The next `times` reads of (org, user)'s roles fail as a Kinde 503 would."""
    original, left = world.kinde.user_roles, {"n": times}

    def flaky(o: str, u: str) -> list[dict[str, Any]]:
        if (o, u) == (org, user) and left["n"] > 0:
            left["n"] -= 1
            raise RetryableError("Kinde answered 503", reason="kinde_unavailable")
        return original(o, u)

    world.kinde.user_roles = flaky  # type: ignore[method-assign]


# --- 1. a pass that fails after writing its record forgets the targets it left ---


def test_a_moved_customer_whose_pass_failed_once_still_takes_its_roles_from_the_old_user(world: World) -> None:
    world.kinde.add_user("kp_1", "customer_1")
    world.kinde.add_user("kp_2", None)
    world.kinde.set_plan("customer_1", "plan_subscriber")
    handle_event(world.deps, user_created("ev_u", "kp_1"), OLD)
    assert world.kinde.role_keys("org_default", "kp_1") == ["role_subscriber"]

    link_customer(world.deps.parking, "customer_1", user_id="kp_2", org_code="org_default")
    fail_reads_of(world, "org_default", "kp_1")  # one 503 while converging the target it left
    with pytest.raises(RetryableError):
        converge_customer(world.deps, "customer_1", "link_moved", "msg_1")
    assert converge_customer(world.deps, "customer_1", "link_moved", "msg_1") == "converged"  # the retry

    assert world.kinde.role_keys("org_default", "kp_2") == ["role_subscriber"]
    assert world.kinde.role_keys("org_default", "kp_1") == []


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


# --- 3. upgrade: a customer without a record that moves leaves its roles behind ---


def test_a_customer_without_a_record_that_moves_takes_its_roles_with_it(world: World) -> None:
    world.kinde.add_user("kp_1", "customer_1")
    world.kinde.add_user("kp_2", None)
    world.kinde.set_plan("customer_1", "plan_subscriber")
    handle_event(world.deps, user_created("ev_u", "kp_1"), OLD)
    world.redis.delete(keys.customer_grants("customer_1"))  # granted by the version before grant records

    link_customer(world.deps.parking, "customer_1", user_id="kp_2", org_code="org_default")
    converge_customer(world.deps, "customer_1", "link_moved", "msg_1")

    assert world.kinde.role_keys("org_default", "kp_2") == ["role_subscriber"]
    assert world.kinde.role_keys("org_default", "kp_1") == []


# --- 4. budget: a single-customer B2C plan change ---


def test_a_b2c_plan_change_costs_at_most_five_calls_and_a_duplicate_none(world: World) -> None:
    world.kinde.add_user("kp_1", "customer_1")
    world.kinde.set_plan("customer_1", "plan_subscriber")
    handle_event(world.deps, user_created("ev_u", "kp_1"), OLD)
    world.kinde.set_plan("customer_1", "plan_client")
    before = len(world.kinde.calls)
    assert handle_event(world.deps, billing("ev_1", "customer_1"), OLD) == "converged"
    assert len(world.kinde.calls) - before <= 5, world.kinde.calls[before:]  # 4 + the entitlements read
    before = len(world.kinde.calls)
    assert handle_event(world.deps, billing("ev_1", "customer_1"), OLD) == "duplicate"
    assert len(world.kinde.calls) == before


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
