"""The worker's core decisions, in process: real Redis for its state, a recording fake for Kinde."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from common.customers.links import CustomerLink
from common.errors import ContendedError, PermanentError
from common.infra.deadletters import UNRESOLVED
from tests.worker.conftest import World, build_world
from worker.customers.park import link_customer
from worker.events.handlers import converge_customer, handle_event

OLD = {"received_at": 0.0}  # past the link grace: unresolved events park at once


def billing(event_id: str, customer_id: str, type_: str = "customer.plan_changed", **data: Any) -> dict[str, Any]:
    return {
        "type": type_,
        "event_id": event_id,
        "timestamp": "2026-11-22T00:00:00Z",
        "data": {"customer_id": customer_id, **data},
    }


def user_created(event_id: str, user_id: str) -> dict[str, Any]:
    return {"type": "user.created", "event_id": event_id, "data": {"user": {"id": user_id}}}


def subscribed(world: World, user: str = "kp_1", customer: str = "customer_1", plan: str = "plan_subscriber") -> None:
    world.kinde.add_user(user, customer)
    world.kinde.set_plan(customer, plan)
    assert handle_event(world.deps, user_created(f"ev_u_{user}", user), OLD) == "converged"


def test_a_plan_change_adds_the_new_role_and_removes_the_old(world: World) -> None:
    subscribed(world)
    assert world.kinde.role_keys("org_default", "kp_1") == ["role_subscriber"]
    world.kinde.set_plan("customer_1", "plan_client")
    assert handle_event(world.deps, billing("ev_1", "customer_1"), OLD) == "converged"
    assert world.kinde.role_keys("org_default", "kp_1") == ["role_client"]


def test_a_duplicate_event_makes_no_kinde_call(world: World) -> None:
    subscribed(world)
    handle_event(world.deps, billing("ev_dup", "customer_1"), OLD)
    before = len(world.kinde.calls)
    assert handle_event(world.deps, billing("ev_dup", "customer_1"), OLD) == "duplicate"
    assert handle_event(world.deps, user_created("ev_u_kp_1", "kp_1"), OLD) == "duplicate"
    assert len(world.kinde.calls) == before


def test_a_role_given_by_hand_survives_every_plan_change(world: World) -> None:
    subscribed(world)
    world.kinde.held[("org_default", "kp_1")].add("r-adm")
    for n, plan in enumerate(["plan_client", None, "plan_subscriber", None]):
        world.kinde.set_plan("customer_1", plan)
        handle_event(world.deps, billing(f"ev_{n}", "customer_1"), OLD)
        assert "role_admin" in world.kinde.role_keys("org_default", "kp_1")
    assert world.kinde.role_keys("org_default", "kp_1") == ["role_admin"]


def test_an_unknown_plan_grants_nothing_and_is_warned_once(world: World) -> None:
    mystery = f"plan_mystery_{uuid.uuid4().hex[:8]}"  # the warning is once per process: a code never seen
    with capture_logs() as logs:
        subscribed(world, plan=mystery)
        world.kinde.set_plan("customer_1", mystery)
        handle_event(world.deps, billing("ev_m", "customer_1"), OLD)
    assert world.kinde.role_keys("org_default", "kp_1") == []
    warnings = [e for e in logs if e["event"] == "unknown_plan_ignored"]
    assert [w["plan_code"] for w in warnings] == [mystery]


def test_an_unknown_customer_is_parked_then_replayed_when_its_link_is_learned(world: World) -> None:
    assert handle_event(world.deps, billing("ev_p", "customer_9"), OLD) == "parked"
    record = world.dead_letters.get("ev_p")
    assert record is not None
    assert record.reason == UNRESOLVED
    assert record.customer_id == "customer_9"
    assert len(world.rebuild_chunks) == 1  # an index rebuild was asked for; it runs as its own actor
    assert world.enqueued == []
    assert link_customer(world.deps.parking, "customer_9", user_id="kp_9") == 1
    assert world.dead_letters.get("ev_p") is None
    claims, meta, delay = world.enqueued.pop()
    assert claims["event_id"] == "ev_p"
    assert meta["replayed"]
    assert delay == 0


def test_a_fresh_unknown_customer_waits_briefly_for_its_user_event(world: World) -> None:
    with pytest.raises(ContendedError) as caught:
        handle_event(world.deps, billing("ev_f", "customer_8"), {"received_at": time.time()})
    assert caught.value.reason == "awaiting_link"
    assert world.kinde.calls == []


def test_a_rebuild_finds_users_one_by_one_where_the_tenant_refuses_the_billing_expand(world: World) -> None:
    world.kinde.add_user("kp_r", "customer_r")
    world.kinde.set_plan("customer_r", "plan_client")
    refuse = PermanentError("no", reason="kinde_INVALID_EXPAND_VALUES")
    original = world.kinde.users_page

    def users_page(*, expand_billing: bool, next_token: str | None) -> Any:
        if expand_billing:
            raise refuse
        return original(expand_billing=False, next_token=next_token)

    world.kinde.users_page = users_page  # type: ignore[method-assign]
    assert handle_event(world.deps, billing("ev_r", "customer_r"), OLD) == "parked"
    world.run_rebuilds()
    assert "GET /user kp_r" in world.kinde.calls
    claims, meta, _ = world.enqueued.pop()
    assert handle_event(world.deps, claims, meta) == "converged"
    assert world.kinde.role_keys("org_default", "kp_r") == ["role_client"]
    world.kinde.calls.clear()
    assert handle_event(world.deps, billing("ev_r2", "customer_unknown"), OLD) == "parked"
    assert world.rebuild_chunks == []  # received before the last rebuild began, which covered it


def test_a_b2b_plan_gives_every_member_the_role_and_cancel_takes_it_away(world: World) -> None:
    world.kinde.orgs["org_acme"] = {"code": "org_acme", "billing": {"billing_customer_id": "customer_acme"}}
    for user in ("kp_a", "kp_b", "kp_c"):
        world.kinde.add_user(user, None, org="org_acme")
    world.kinde.set_plan("customer_acme", "plan_client")
    org_event = {"type": "organization.created", "event_id": "ev_o", "data": {"organization": {"code": "org_acme"}}}
    assert handle_event(world.deps, org_event, OLD) == "converged"
    assert all(world.kinde.role_keys("org_acme", u) == ["role_client"] for u in ("kp_a", "kp_b", "kp_c"))
    world.kinde.set_plan("customer_acme", None)
    handle_event(world.deps, billing("ev_cancel", "customer_acme", "customer.agreement_cancelled"), OLD)
    assert all(world.kinde.role_keys("org_acme", u) == [] for u in ("kp_a", "kp_b", "kp_c"))


def test_a_managed_role_missing_in_kinde_is_a_permanent_error_naming_it(world: World) -> None:
    del world.kinde.roles_by_key["role_client"]
    world.kinde.add_user("kp_x", "customer_x")
    world.kinde.set_plan("customer_x", "plan_client")
    with pytest.raises(PermanentError) as caught:
        handle_event(world.deps, user_created("ev_x", "kp_x"), OLD)
    assert caught.value.reason == "role_not_found:role_client"
    assert world.deps.states.get("customer_x")["last_error_reason"] == "role_not_found:role_client"


def test_user_deleted_drops_the_users_links(world: World) -> None:
    subscribed(world)
    deleted = {"type": "user.deleted", "event_id": "ev_del", "data": {"user": {"id": "kp_1"}}}
    assert handle_event(world.deps, deleted, OLD) == "links_dropped"
    assert world.deps.links.get("customer_1") is None


@pytest.mark.parametrize("data", [{"organization": {"code": "org_acme"}}, {"code": "org_acme"}], ids=["nested", "flat"])
def test_organization_deleted_drops_the_orgs_link_and_its_members_links(world: World, data: dict[str, Any]) -> None:
    world.kinde.orgs["org_acme"] = {"code": "org_acme", "billing": {"billing_customer_id": "customer_acme"}}
    world.kinde.set_plan("customer_acme", "plan_client")
    updated = {"type": "organization.updated", "event_id": "ev_u", "data": {"organization": {"code": "org_acme"}}}
    assert handle_event(world.deps, updated, OLD) == "converged"  # an update teaches the link like a create
    world.deps.links.put(CustomerLink("customer_m", "user", "kp_m", "org_acme", "event", 1.0))
    subscribed(world)  # kp_1 in org_default stays linked
    assert world.deps.links.all_customer_ids() == ["customer_1", "customer_acme", "customer_m"]
    deleted = {"type": "organization.deleted", "event_id": "ev_od", "data": data}
    assert handle_event(world.deps, deleted, OLD) == "links_dropped"
    assert world.deps.links.all_customer_ids() == ["customer_1"]


def test_a_user_with_a_billing_customer_in_each_of_two_orgs_gets_each_plans_roles_in_its_org(world: World) -> None:
    """Kinde allows one billing customer per user per org; `billing` may then be a list naming each org."""
    billing = [{"customer_id": "customer_a", "org_code": "org_a"}, {"customer_id": "customer_b", "org_code": "org_b"}]
    world.kinde.users["kp_2"] = {"id": "kp_2", "organizations": ["org_a", "org_b"], "billing": billing}
    world.kinde.set_plan("customer_a", "plan_subscriber")
    world.kinde.set_plan("customer_b", "plan_client")
    assert handle_event(world.deps, user_created("ev_two", "kp_2"), OLD) == "converged"
    assert world.kinde.role_keys("org_a", "kp_2") == ["role_subscriber"]
    assert world.kinde.role_keys("org_b", "kp_2") == ["role_client"]
    assert world.deps.links.customers_of_user("kp_2") == ["customer_a", "customer_b"]


def test_a_held_lease_sends_the_event_back_for_a_short_retry(world: World) -> None:
    subscribed(world)
    with world.deps.coalescer.lease("customer_1"), pytest.raises(ContendedError):
        handle_event(world.deps, billing("ev_busy", "customer_1"), OLD)


def test_ids_carried_by_the_event_resolve_with_one_lookup_and_no_rebuild(world: World) -> None:
    """The user the event names is looked up once (placement follows Kinde's state), never a rebuild."""
    world.kinde.add_user("kp_e", "customer_e")
    world.kinde.set_plan("customer_e", "plan_subscriber")
    assert handle_event(world.deps, billing("ev_e", "customer_e", user_id="kp_e"), OLD) == "converged"
    assert [c for c in world.kinde.calls if c.startswith(("GET /user", "GET /users"))] == ["GET /user kp_e"]
    assert handle_event(world.deps, billing("ev_e2", "customer_e", user_id="kp_e"), OLD) in {"converged", "duplicate"}
    assert [c for c in world.kinde.calls if c.startswith(("GET /user", "GET /users"))] == ["GET /user kp_e"]
    assert world.kinde.role_keys("org_default", "kp_e") == ["role_subscriber"]


def test_every_new_converge_request_rereads_kinde_even_within_the_same_second(world: World) -> None:
    """Two reconcile requests for one customer back to back both converge; a redelivered request does not."""
    subscribed(world)
    world.kinde.held[("org_default", "kp_1")].clear()  # drift made by hand after the last pass
    assert converge_customer(world.deps, "customer_1", "reconcile", "msg_1") == "converged"
    assert world.kinde.role_keys("org_default", "kp_1") == ["role_subscriber"]
    world.kinde.held[("org_default", "kp_1")].clear()
    assert converge_customer(world.deps, "customer_1", "reconcile", "msg_2") == "converged"
    assert world.kinde.role_keys("org_default", "kp_1") == ["role_subscriber"]
    assert converge_customer(world.deps, "customer_1", "reconcile", "msg_2") == "duplicate"


def test_a_personal_customer_placed_in_a_deleted_org_gets_its_roles_where_the_rebuild_places_it(
    redis_url: str,
) -> None:
    asked: list[tuple[str, str]] = []
    world = build_world(redis_url, converge=lambda customer, reason: asked.append((customer, reason)))
    world.kinde.orgs["org_acme"] = {"code": "org_acme"}
    world.kinde.add_user("kp_1", "customer_1", org="org_acme")  # the user's only org: placed there
    world.kinde.set_plan("customer_1", "plan_subscriber")
    assert handle_event(world.deps, user_created("ev_u", "kp_1"), OLD) == "converged"
    assert world.kinde.role_keys("org_acme", "kp_1") == ["role_subscriber"]

    del world.kinde.orgs["org_acme"], world.kinde.members["org_acme"]  # Kinde deletes the org
    world.kinde.users["kp_1"]["organizations"] = []  # no org left: the B2C org
    deleted = {"type": "organization.deleted", "event_id": "ev_od", "data": {"organization": {"code": "org_acme"}}}
    assert handle_event(world.deps, deleted, OLD) == "links_dropped"
    world.run_rebuilds()  # the deletion asked for one: it learns the link at its new placement
    link = world.deps.links.get("customer_1")
    assert link is not None
    assert (link.user_id, link.org_code) == ("kp_1", None)
    # was: learned as a new link, which queues no pass: the customer held no roles anywhere
    assert asked == [("customer_1", "link_moved")]
    converge_customer(world.deps, "customer_1", "link_moved", "msg_1")
    assert world.kinde.role_keys("org_default", "kp_1") == ["role_subscriber"]


def test_an_org_deleted_while_its_pass_is_in_flight_keeps_no_snapshot_there(world: World) -> None:
    from tests.worker.convergence.test_convergence import paying_org

    paying_org(world, "org_acme", "customer_org", "plan_client", "kp_1")
    assert world.deps.converger.snapshots is not None
    assert [s.target.org_code for s in world.deps.converger.snapshots.of_user("kp_1")] == ["org_acme"]
    listing = world.kinde.org_members

    def deleted_after_the_listing(org_code: str) -> Iterator[dict[str, Any]]:
        rows = list(listing(org_code))  # the pass has its member listing; then Kinde deletes the org
        del world.kinde.orgs["org_acme"], world.kinde.members["org_acme"]
        world.kinde.users["kp_1"]["organizations"].remove("org_acme")
        deleted = {"type": "organization.deleted", "event_id": "ev_od", "data": {"organization": {"code": org_code}}}
        assert handle_event(world.deps, deleted, OLD) == "links_dropped"
        yield from rows

    world.kinde.org_members = deleted_after_the_listing  # type: ignore[method-assign]
    converge_customer(world.deps, "customer_org", "reconcile", "msg_r")
    assert world.deps.converger.snapshots.of_user("kp_1") == []
