"""The convergence model: a target holds the union of what its covering customers grant.

Real Redis for every store, the recording fake for Kinde. Each test names the case it guards; each
failed on the convergence that converged one customer at a time (before grant records and targets).
"""

from __future__ import annotations

from typing import Any

import pytest

from common import keys
from common.customers.links import CustomerLink
from common.entitlements.grants import Target
from common.errors import RetryableError
from tests.worker.conftest import World
from tests.worker.events.test_handlers import OLD, billing, user_created
from worker.convergence.lease import LeaseLostError
from worker.customers.park import link_customer
from worker.events.handlers import converge_customer, handle_event
from worker.kinde.api import EntitlementRows


def org_member(world: World, org: str, user: str) -> None:
    world.kinde.users.setdefault(user, {"id": user, "organizations": [], "billing": {}})
    world.kinde.users[user]["organizations"].append(org)
    world.kinde.members.setdefault(org, []).append(user)


def paying_org(world: World, org: str, customer: str, plan: str, *members: str) -> None:
    world.kinde.orgs[org] = {"code": org, "billing": {"billing_customer_id": customer}}
    for user in members:
        org_member(world, org, user)
    world.kinde.set_plan(customer, plan)
    created = {"type": "organization.created", "event_id": f"ev_o_{org}", "data": {"organization": {"code": org}}}
    assert handle_event(world.deps, created, OLD) == "converged"


def personal(world: World, user: str, customer: str, plan: str) -> None:
    world.kinde.users[user]["billing"] = {"customer_id": customer}
    world.kinde.set_plan(customer, plan)


def user_updated(event_id: str, user_id: str) -> dict[str, Any]:
    return {"type": "user.updated", "event_id": event_id, "data": {"user": {"id": user_id}}}


# --- 1. a cancellation that names the user takes the role from the org where it was granted ---


def test_a_cancellation_naming_the_user_removes_the_role_in_the_users_only_org(world: World) -> None:
    world.kinde.add_user("kp_1", "customer_1", org="org_shop")  # not the default org
    world.kinde.set_plan("customer_1", "plan_subscriber")
    assert handle_event(world.deps, user_created("ev_u", "kp_1"), OLD) == "converged"
    assert world.kinde.role_keys("org_shop", "kp_1") == ["role_subscriber"]

    world.kinde.set_plan("customer_1", None)
    cancelled = billing("ev_c", "customer_1", "customer.agreement_cancelled", user_id="kp_1")
    assert handle_event(world.deps, cancelled, OLD) == "converged"

    assert world.kinde.role_keys("org_shop", "kp_1") == []
    link = world.deps.links.get("customer_1")
    assert link is not None
    assert (link.kind, link.org_code) == ("user", "org_shop")


def test_an_event_naming_a_user_never_turns_an_org_link_into_a_user_link(world: World) -> None:
    paying_org(world, "org_acme", "customer_org", "plan_client", "kp_1", "kp_2")
    assert handle_event(world.deps, billing("ev_1", "customer_org", user_id="kp_1"), OLD) in {"converged", "duplicate"}
    link = world.deps.links.get("customer_org")
    assert link is not None
    assert (link.kind, link.org_code, link.user_id) == ("org", "org_acme", None)
    assert world.kinde.role_keys("org_acme", "kp_2") == ["role_client"]


def test_a_customer_linked_by_hand_to_another_user_takes_its_roles_with_it(world: World) -> None:
    world.kinde.add_user("kp_1", "customer_1")
    world.kinde.add_user("kp_2", None)
    world.kinde.set_plan("customer_1", "plan_subscriber")
    handle_event(world.deps, user_created("ev_u", "kp_1"), OLD)
    asked: list[tuple[str, str]] = []
    parking = world.deps.parking.__class__(world.deps.links, world.dead_letters, lambda *_: None,
                                           lambda c, r: asked.append((c, r)))  # fmt: skip

    link_customer(parking, "customer_1", user_id="kp_2", org_code="org_default")
    assert asked == [("customer_1", "link_moved")]
    assert converge_customer(world.deps, "customer_1", "link_moved", "msg_1") == "converged"

    assert world.kinde.role_keys("org_default", "kp_2") == ["role_subscriber"]
    assert world.kinde.role_keys("org_default", "kp_1") == []


# --- 2. two customers on one (org, user) hold the union; neither undoes the other ---


def two_payers(world: World) -> None:
    paying_org(world, "org_acme", "customer_org", "plan_client", "kp_1")
    personal(world, "kp_1", "customer_me", "plan_subscriber")
    assert handle_event(world.deps, user_updated("ev_u1", "kp_1"), OLD) == "converged"


def test_a_member_who_also_pays_personally_holds_both_roles(world: World) -> None:
    two_payers(world)
    assert world.kinde.role_keys("org_acme", "kp_1") == ["role_client", "role_subscriber"]
    for n, customer in enumerate(["customer_org", "customer_me", "customer_org", "customer_me"]):
        converge_customer(world.deps, customer, "reconcile", f"msg_{n}")
        assert world.kinde.role_keys("org_acme", "kp_1") == ["role_client", "role_subscriber"]
    assert world.kinde.writes().count("DELETE org_acme/kp_1 r-cli") == 0


def test_cancelling_the_personal_plan_keeps_the_companys_role(world: World) -> None:
    two_payers(world)
    world.kinde.set_plan("customer_me", None)
    assert handle_event(world.deps, billing("ev_c", "customer_me", "customer.agreement_cancelled"), OLD) == "converged"
    assert world.kinde.role_keys("org_acme", "kp_1") == ["role_client"]


def test_the_company_stopping_payment_keeps_the_personal_role(world: World) -> None:
    two_payers(world)
    world.kinde.set_plan("customer_org", None)
    assert handle_event(world.deps, billing("ev_c", "customer_org", "customer.agreement_cancelled"), OLD) == "converged"
    assert world.kinde.role_keys("org_acme", "kp_1") == ["role_subscriber"]


# --- 4. a retried user event does exactly the parts that did not finish ---


def test_a_retried_user_event_that_taught_two_customers_converges_the_second(world: World) -> None:
    world.kinde.add_user("kp_1", None)
    world.kinde.users["kp_1"]["billing"] = [{"customer_id": "customer_a"}, {"customer_id": "customer_b"}]
    world.kinde.set_plan("customer_a", "plan_subscriber")
    world.kinde.set_plan("customer_b", "plan_client")
    world.kinde.fail_next = 0
    reads = {"n": 0}
    original = world.kinde.user_roles

    def second_read_fails(org: str, user: str) -> list[dict[str, Any]]:
        reads["n"] += 1
        if reads["n"] == 2:
            raise RetryableError("Kinde answered 503", reason="kinde_unavailable")
        return original(org, user)

    world.kinde.user_roles = second_read_fails  # type: ignore[method-assign]
    with pytest.raises(RetryableError):
        handle_event(world.deps, user_created("ev_u", "kp_1"), OLD)
    agreements_before = sum(c.startswith("GET /billing/agreements customer_a") for c in world.kinde.calls)

    assert handle_event(world.deps, user_created("ev_u", "kp_1"), OLD) == "converged"
    assert world.kinde.role_keys("org_default", "kp_1") == ["role_client", "role_subscriber"]
    assert sum(c.startswith("GET /billing/agreements customer_a") for c in world.kinde.calls) == agreements_before
    assert handle_event(world.deps, user_created("ev_u", "kp_1"), OLD) == "duplicate"


# --- 7. a pass that lost its lease writes nothing ---


def test_a_pass_that_lost_its_customer_lease_writes_no_role(world: World) -> None:
    world.kinde.add_user("kp_1", "customer_1")
    world.kinde.set_plan("customer_1", "plan_subscriber")
    handle_event(world.deps, user_created("ev_u", "kp_1"), OLD)
    world.kinde.set_plan("customer_1", "plan_client")
    original = world.kinde.entitlements  # the pass's read of what is in force (worker/convergence/in_force.py)

    def lease_expires_meanwhile(customer_id: str) -> EntitlementRows:
        world.redis.delete(keys.customer_lock(customer_id))  # as if the pass blocked past the lease
        return original(customer_id)

    world.kinde.entitlements = lease_expires_meanwhile  # type: ignore[method-assign]
    writes = len(world.kinde.writes())
    with pytest.raises(LeaseLostError):
        handle_event(world.deps, billing("ev_1", "customer_1"), OLD)
    assert len(world.kinde.writes()) == writes
    assert world.kinde.role_keys("org_default", "kp_1") == ["role_subscriber"]


def test_a_target_whose_lease_was_lost_mid_pass_is_not_written(world: World) -> None:
    world.kinde.add_user("kp_1", "customer_1")
    world.kinde.set_plan("customer_1", "plan_subscriber")
    original = world.kinde.user_roles

    def lease_expires_meanwhile(org: str, user: str) -> list[dict[str, Any]]:
        world.redis.delete(keys.target_lock(Target(org, user).key))
        return original(org, user)

    world.kinde.user_roles = lease_expires_meanwhile  # type: ignore[method-assign]
    with pytest.raises(LeaseLostError):
        handle_event(world.deps, user_created("ev_u", "kp_1"), OLD)
    assert world.kinde.writes() == []


# --- 10. a removal by a stale role id looks again ---


def test_a_removal_by_a_stale_cached_role_id_removes_the_re_created_role(world: World) -> None:
    paying_org(world, "org_acme", "customer_org", "plan_client", "kp_1")
    assert world.kinde.role_keys("org_acme", "kp_1") == ["role_client"]
    world.kinde.roles_by_key["role_client"] = "r-cli-2"  # the role was deleted and re-created in Kinde
    world.kinde.held[("org_acme", "kp_1")] = {"r-cli-2"}

    world.kinde.set_plan("customer_org", None)
    handle_event(world.deps, billing("ev_c", "customer_org", "customer.agreement_cancelled"), OLD)

    assert world.kinde.held[("org_acme", "kp_1")] == set()
    assert "DELETE org_acme/kp_1 r-cli-2" in world.kinde.writes()


# --- a new member of a paying org gets its roles from the user event alone ---


def test_a_new_member_of_a_paying_org_gets_its_roles_from_the_user_event(world: World) -> None:
    paying_org(world, "org_acme", "customer_org", "plan_client", "kp_1")
    org_member(world, "org_acme", "kp_2")
    assert handle_event(world.deps, user_updated("ev_u2", "kp_2"), OLD) == "converged"
    assert world.kinde.role_keys("org_acme", "kp_2") == ["role_client"]


def test_a_member_who_left_a_paying_org_loses_its_roles_at_the_orgs_next_pass(world: World) -> None:
    paying_org(world, "org_acme", "customer_org", "plan_client", "kp_1", "kp_2")
    world.kinde.members["org_acme"].remove("kp_2")  # Kinde may keep the roles on the membership record
    world.kinde.users["kp_2"]["organizations"].remove("org_acme")
    converge_customer(world.deps, "customer_org", "reconcile", "msg_1")
    assert world.kinde.role_keys("org_acme", "kp_2") == []
    assert world.kinde.role_keys("org_acme", "kp_1") == ["role_client"]


def test_merging_an_events_ids_fills_gaps_and_never_contradicts_a_lookup() -> None:
    from worker.customers.placement import merged

    looked = CustomerLink("c", "user", "kp_1", "org_x", "user_lookup", 0.0)
    assert merged(looked, CustomerLink("c", "user", "kp_1", None, "event", 1.0)) == looked
    assert merged(looked, CustomerLink("c", "user", "kp_9", None, "event", 1.0)) == looked
    assert merged(looked, CustomerLink("c", "org", None, "org_y", "event", 1.0)) == looked
    bare = CustomerLink("c", "user", "kp_1", None, "user_lookup", 0.0)  # Kinde cannot tell the org
    assert merged(bare, CustomerLink("c", "user", "kp_1", "org_x", "event", 1.0)) == bare  # else look-ups undo it
    taught = CustomerLink("c", "user", "kp_1", None, "event", 0.0)
    assert merged(taught, CustomerLink("c", "user", "kp_1", "org_x", "event", 1.0)).org_code == "org_x"
    assert merged(taught, CustomerLink("c", "user", "kp_1", None, "event", 1.0)) == taught
    org = CustomerLink("c", "org", None, "org_x", "org_lookup", 0.0)
    assert merged(org, CustomerLink("c", "user", "kp_1", "org_x", "event", 1.0)) == org


# --- found by the large model run (chaos/model.py): placement follows Kinde's state alone ---


def test_a_subscriber_joining_a_second_org_has_the_roles_follow_the_placement_rule(world: World) -> None:
    world.kinde.add_user("kp_1", "customer_1", org="org_shop")
    world.kinde.set_plan("customer_1", "plan_subscriber")
    handle_event(world.deps, user_created("ev_u", "kp_1"), OLD)
    assert world.kinde.role_keys("org_shop", "kp_1") == ["role_subscriber"]

    org_member(world, "org_default", "kp_1")  # two orgs, no KINDE_ORG_CODE: the B2C (default) org
    assert handle_event(world.deps, user_updated("ev_u2", "kp_1"), OLD) == "converged"

    assert world.kinde.role_keys("org_default", "kp_1") == ["role_subscriber"]
    assert world.kinde.role_keys("org_shop", "kp_1") == []


def test_an_on_call_link_to_an_org_the_user_left_gives_way_to_kindes_placement(world: World) -> None:
    world.kinde.add_user("kp_1", "customer_1", org="org_shop")
    org_member(world, "org_default", "kp_1")
    world.kinde.set_plan("customer_1", "plan_subscriber")
    link_customer(world.deps.parking, "customer_1", user_id="kp_1", org_code="org_default")
    converge_customer(world.deps, "customer_1", "linked_by_hand", "msg_1")
    assert world.kinde.role_keys("org_default", "kp_1") == ["role_subscriber"]

    world.kinde.users["kp_1"]["organizations"].remove("org_default")  # the user leaves the linked org
    world.kinde.members["org_default"].remove("kp_1")
    handle_event(world.deps, user_updated("ev_u2", "kp_1"), OLD)

    assert world.kinde.role_keys("org_shop", "kp_1") == ["role_subscriber"]
