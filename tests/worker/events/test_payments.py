"""plans.toml's `[payment_failed]` policy, in process: real Redis for state, a recording fake Kinde.

Webhooks arrive late and out of order, so the standing follows the events' own timestamps.
"""

from __future__ import annotations

from typing import Any

import pytest

from common.plans.mapping import parse_plans
from common.plans.payments import failing_of
from tests.worker.conftest import PLANS, World, build_world
from worker.events.handlers import handle_event

OLD = {"received_at": 0.0}
SUSPEND_TEXT = (
    '[plans]\nplan_subscriber = ["role_subscriber"]\nplan_client = ["role_client"]\n'
    '[payment_failed]\naction = "suspend"\ngrants = ["role_past_due"]\n'
)
SUSPEND = parse_plans(SUSPEND_TEXT)


def payment(event_id: str, type_: str, at: str, customer_id: str = "customer_1") -> dict[str, Any]:
    return {"type": type_, "event_id": event_id, "timestamp": at, "data": {"customer_id": customer_id}}


def subscribed(world: World) -> None:
    world.kinde.roles_by_key["role_past_due"] = "r-due"
    world.kinde.add_user("kp_1", "customer_1")
    world.kinde.set_plan("customer_1", "plan_client")
    created = {"type": "user.created", "event_id": "ev_u", "data": {"user": {"id": "kp_1"}}}
    assert handle_event(world.deps, created, OLD) == "converged"
    assert world.kinde.role_keys("org_default", "kp_1") == ["role_client"]


@pytest.fixture
def suspending(redis_url: str) -> World:
    return build_world(redis_url, plans=SUSPEND)


def test_a_failed_payment_suspends_the_plan_roles_until_a_payment_succeeds(suspending: World) -> None:
    subscribed(suspending)
    handle_event(suspending.deps, payment("ev_f", "customer.payment_failed", "2026-11-22T10:00:00Z"), OLD)
    assert suspending.kinde.role_keys("org_default", "kp_1") == ["role_past_due"]
    handle_event(suspending.deps, payment("ev_s", "customer.payment_succeeded", "2026-11-22T11:00:00Z"), OLD)
    assert suspending.kinde.role_keys("org_default", "kp_1") == ["role_client"]


def test_an_older_success_delivered_late_does_not_lift_a_newer_failure(suspending: World) -> None:
    subscribed(suspending)
    handle_event(suspending.deps, payment("ev_f", "customer.invoice_overdue", "2026-11-22T10:00:00Z"), OLD)
    handle_event(suspending.deps, payment("ev_s", "customer.payment_succeeded", "2026-11-22T09:00:00Z"), OLD)
    assert suspending.kinde.role_keys("org_default", "kp_1") == ["role_past_due"]


def test_a_new_agreement_after_the_failure_lifts_the_suspension(suspending: World) -> None:
    subscribed(suspending)
    handle_event(suspending.deps, payment("ev_f", "customer.payment_failed", "2026-11-22T10:00:00Z"), OLD)
    suspending.kinde.set_plan("customer_1", "plan_subscriber")
    handle_event(suspending.deps, payment("ev_a", "customer.agreement_created", "2026-11-22T12:00:00Z"), OLD)
    assert suspending.kinde.role_keys("org_default", "kp_1") == ["role_subscriber"]


def test_a_cancelled_customer_gets_no_past_due_role(suspending: World) -> None:
    subscribed(suspending)
    handle_event(suspending.deps, payment("ev_f", "customer.payment_failed", "2026-11-22T10:00:00Z"), OLD)
    suspending.kinde.set_plan("customer_1", None)
    handle_event(suspending.deps, payment("ev_c", "customer.agreement_cancelled", "2026-11-22T13:00:00Z"), OLD)
    assert suspending.kinde.role_keys("org_default", "kp_1") == []


def test_by_default_a_failed_payment_leaves_roles_to_kindes_agreements(redis_url: str) -> None:
    world = build_world(redis_url, plans=PLANS)
    subscribed(world)
    writes = len(world.kinde.writes())
    handle_event(world.deps, payment("ev_f", "customer.payment_failed", "2026-11-22T10:00:00Z"), OLD)
    assert world.kinde.role_keys("org_default", "kp_1") == ["role_client"]
    assert len(world.kinde.writes()) == writes


def test_a_parked_payment_without_its_own_time_replayed_later_does_not_overrule_a_newer_one(
    suspending: World,
) -> None:
    """An event with no `timestamp` is dated by its receipt; a replay (worker/customers/park.py) re-dates it to
    the replay, which must not make an old failure newer than the success received after it."""
    suspending.kinde.roles_by_key["role_past_due"] = "r-due"
    suspending.kinde.set_plan("customer_1", "plan_client")
    failed = {"type": "customer.payment_failed", "event_id": "ev_f", "data": {"customer_id": "customer_1"}}
    assert handle_event(suspending.deps, failed, {"received_at": 10.0}) == "parked"
    suspending.kinde.add_user("kp_1", "customer_1")
    created = {"type": "user.created", "event_id": "ev_u", "data": {"user": {"id": "kp_1"}}}
    assert handle_event(suspending.deps, created, OLD) == "converged"  # learns the link: ev_f replayed
    [(replayed, meta)] = [(c, m) for c, m, _ in suspending.enqueued if m.get("replayed")]
    assert replayed["event_id"] == "ev_f"

    # The success, received at 20 (queued while ev_f was parked), and the replay, in either order.
    paid = {"type": "customer.payment_succeeded", "event_id": "ev_s", "data": {"customer_id": "customer_1"}}
    handle_event(suspending.deps, paid, {"received_at": 20.0})
    handle_event(suspending.deps, replayed, meta)

    assert suspending.deps.converger.payments is not None
    assert (suspending.deps.converger.payments.standing("customer_1") or {}).get("standing") == "ok"
    assert suspending.kinde.role_keys("org_default", "kp_1") == ["role_client"]


# (standing recorded, plans held, policy) -> roles held, as the four former copies of the rule computed them
KEPT_WHILE_FAILING = [
    (None, [], "suspend", set()),
    (None, ["plan_client"], "suspend", {"role_client"}),
    ("ok", ["plan_client"], "suspend", {"role_client"}),
    ("failing", ["plan_client"], "suspend", {"role_past_due"}),
    ("failing", [], "suspend", set()),  # no plan: nothing to suspend, no past-due role either
    ("failing", ["plan_client"], "keep", {"role_client"}),
]


@pytest.mark.parametrize(("standing", "codes", "action", "expected"), KEPT_WHILE_FAILING,
                         ids=[f"{s}-{len(c)}plans-{a}" for s, c, a, _ in KEPT_WHILE_FAILING])  # fmt: skip
def test_the_pass_its_snapshot_and_the_preview_keep_the_same_roles_while_a_payment_fails(
    redis_url: str, standing: str | None, codes: list[str], action: str, expected: set[str]
) -> None:
    plans = SUSPEND if action == "suspend" else parse_plans(SUSPEND_TEXT.replace('"suspend"', '"keep"'))
    world = build_world(redis_url, plans=plans)
    converger = world.deps.converger
    if standing is not None:
        assert converger.payments is not None
        converger.payments.record("customer_1", "failing" if standing == "failing" else "ok", 1.0)
    failing = failing_of(converger.payments, plans)("customer_1")
    assert converger.desired("customer_1", codes) == expected  # the pass
    assert plans.granted(codes, failing=failing) == expected  # the mapping preview's rule
    suspended = expected == {"role_past_due"}
    assert converger.suspended("customer_1", codes) is suspended  # the snapshot's `suspended: true`
    assert plans.suspended(codes, failing=failing) is suspended
