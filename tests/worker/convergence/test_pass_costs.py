"""How many Kinde calls a pass costs: a plan change, a user event."""

from __future__ import annotations

from tests.worker.conftest import World
from tests.worker.convergence.test_convergence import paying_org, personal, user_updated
from tests.worker.events.test_handlers import OLD, billing, user_created
from worker.events.handlers import converge_customer, handle_event

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


# --- cost ---


def test_a_b2c_plan_change_in_an_org_that_also_pays_costs_at_most_four_calls(world: World) -> None:
    paying_org(world, "org_default", "customer_org", "plan_client", "kp_1")
    personal(world, "kp_1", "customer_1", "plan_subscriber")
    handle_event(world.deps, user_updated("ev_u1", "kp_1"), OLD)
    world.kinde.set_plan("customer_1", None)
    world.kinde.set_plan("customer_1", "plan_client")
    world.kinde.set_plan("customer_org", "plan_subscriber")
    converge_customer(world.deps, "customer_org", "reconcile", "m0")
    world.kinde.set_plan("customer_1", "plan_client")
    before = len(world.kinde.calls)
    assert handle_event(world.deps, billing("ev_1", "customer_1"), OLD) == "converged"
    assert len(world.kinde.calls) - before <= 4, world.kinde.calls[before:]
    before = len(world.kinde.calls)
    assert handle_event(world.deps, billing("ev_1", "customer_1"), OLD) == "duplicate"
    assert len(world.kinde.calls) == before


def test_a_user_event_reads_each_target_once(world: World) -> None:
    paying_org(world, "org_default", "customer_org", "plan_client", "kp_1")
    personal(world, "kp_1", "customer_1", "plan_subscriber")
    handle_event(world.deps, user_updated("ev_u1", "kp_1"), OLD)
    before = len(world.kinde.calls)
    handle_event(world.deps, user_updated("ev_u2", "kp_1"), OLD)
    reads = [c for c in world.kinde.calls[before:] if c.startswith("GET roles")]
    assert len(reads) == len(set(reads)), world.kinde.calls[before:]
