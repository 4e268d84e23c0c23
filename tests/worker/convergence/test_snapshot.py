"""The snapshot: what is in force per target, kept by the passes, over real Redis with a recording fake Kinde."""

from __future__ import annotations

import json
from typing import Any

from common import keys
from common.entitlements.customer import UNLIMITED, RedisEntitlementStore
from common.entitlements.grants import Target
from common.entitlements.snapshots import RedisSnapshotStore
from common.plans.mapping import parse_plans
from tests.worker.conftest import World, build_world
from tests.worker.convergence.test_convergence import org_member, paying_org, personal, user_updated
from tests.worker.events.test_handlers import OLD, billing, user_created
from tests.worker.events.test_payments import SUSPEND, payment
from tests.worker.events.test_payments import subscribed as subscribed_client
from worker.events.handlers import converge_customer, handle_event

FEATURES = {"plan_subscriber": {"seats": 1, "projects": 3}, "plan_client": {"seats": 5, "api_calls": UNLIMITED}}
OFF = parse_plans('[plans]\nplan_subscriber = ["role_subscriber"]\nplan_client = ["role_client"]\n'
                  "[entitlements]\nenabled = false\n")  # fmt: skip


def snapshot_of(world: World, user: str, org: str = "org_default") -> dict[str, Any]:
    found = {s.target: s for s in RedisSnapshotStore(world.redis).of_user(user)}
    return found[Target(org, user)].to_dict()


def limits(snapshot: dict[str, Any]) -> dict[str, int | None]:
    return {f["feature_code"]: f["limit_max"] for f in snapshot["features"]}


def signed_up(world: World, user: str = "kp_1", customer: str = "customer_1") -> None:
    world.kinde.features_by_plan = FEATURES
    world.kinde.add_user(user, customer)
    assert handle_event(world.deps, user_created(f"ev_u_{user}", user), OLD) == "converged"


def test_the_snapshot_follows_sign_up_upgrade_and_cancel(world: World) -> None:
    signed_up(world)
    assert snapshot_of(world, "kp_1")["plans"] == []
    assert snapshot_of(world, "kp_1")["features"] == []

    world.kinde.set_plan("customer_1", "plan_subscriber")
    handle_event(world.deps, billing("ev_1", "customer_1"), OLD)
    first = snapshot_of(world, "kp_1")
    assert [p["code"] for p in first["plans"]] == ["plan_subscriber"]
    assert first["plans"][0]["subscribed_on"]  # from expand=plans
    assert limits(first) == {"projects": 3, "seats": 1}
    assert first["roles"] == ["role_subscriber"]
    assert first["customers"][0]["generation"] >= 1

    world.kinde.set_plan("customer_1", "plan_client")
    handle_event(world.deps, billing("ev_2", "customer_1"), OLD)
    upgraded = snapshot_of(world, "kp_1")
    assert limits(upgraded) == {"api_calls": None, "seats": 5}
    assert [f["unlimited"] for f in upgraded["features"]] == [True, False]
    assert upgraded["roles"] == ["role_client"]
    assert upgraded["customers"][0]["generation"] > first["customers"][0]["generation"]

    world.kinde.set_plan("customer_1", None)
    handle_event(world.deps, billing("ev_3", "customer_1"), OLD)
    cancelled = snapshot_of(world, "kp_1")
    assert (cancelled["plans"], cancelled["features"], cancelled["roles"]) == ([], [], [])


def test_with_the_snapshot_on_every_pass_reads_the_entitlements_and_never_the_agreements(world: World) -> None:
    signed_up(world)
    world.kinde.set_plan("customer_1", "plan_subscriber")
    handle_event(world.deps, billing("ev_1", "customer_1"), OLD)
    reads = lambda what: sum(c.startswith(f"GET /billing/{what}") for c in world.kinde.calls)  # noqa: E731
    assert (reads("entitlements"), reads("agreements")) == (2, 0)  # the sign-up's pass and this one
    handle_event(world.deps, billing("ev_2", "customer_1", "customer.payment_succeeded"), OLD)
    assert (reads("entitlements"), reads("agreements")) == (3, 0)  # a pass: its one read of what is in force
    converge_customer(world.deps, "customer_1", "reconcile", "msg_1")
    assert (reads("entitlements"), reads("agreements")) == (4, 0)
    passes = [json.loads(h) for h in world.redis.lrange(keys.customer_history("customer_1"), 0, -1)]
    assert [p["read"] for p in passes if p.get("kind") == "pass"] == [["entitlements"]] * 4


def test_a_refused_entitlements_read_falls_back_to_the_agreements_and_keeps_the_stored_features(world: World) -> None:
    signed_up(world)
    world.kinde.set_plan("customer_1", "plan_subscriber")
    handle_event(world.deps, billing("ev_1", "customer_1"), OLD)
    kept = RedisEntitlementStore(world.redis).get("customer_1")
    world.kinde.entitlements_refused = True
    world.kinde.set_plan("customer_1", "plan_client")
    before = len(world.kinde.calls)
    assert handle_event(world.deps, billing("ev_2", "customer_1"), OLD) == "converged"
    assert world.kinde.role_keys("org_default", "kp_1") == ["role_client"]  # roles never wait on entitlements
    assert [c.split()[1] for c in world.kinde.calls[before:] if "/billing/" in c] == [
        "/billing/entitlements", "/billing/agreements"]  # fmt: skip
    assert RedisEntitlementStore(world.redis).get("customer_1") == kept
    assert snapshot_of(world, "kp_1")["roles"] == ["role_client"]


def test_an_answer_without_plans_takes_the_plans_from_the_agreements_and_the_features_from_it(world: World) -> None:
    signed_up(world)
    world.kinde.plans_expanded = False
    world.kinde.set_plan("customer_1", "plan_client")
    handle_event(world.deps, billing("ev_1", "customer_1"), OLD)
    assert world.kinde.role_keys("org_default", "kp_1") == ["role_client"]
    found = snapshot_of(world, "kp_1")
    assert ([p["code"] for p in found["plans"]], limits(found)) == (["plan_client"], {"api_calls": None, "seats": 5})
    assert sum(c.startswith("GET /billing/agreements") for c in world.kinde.calls) >= 1


def test_two_covering_customers_give_the_union_and_the_larger_limit_wins(world: World) -> None:
    world.kinde.features_by_plan = FEATURES
    paying_org(world, "org_acme", "customer_org", "plan_client", "kp_1")
    org = snapshot_of(world, "kp_1", "org_acme")
    assert limits(org) == {"api_calls": None, "seats": 5}

    world.kinde.users["kp_1"]["organizations"] = ["org_acme"]
    personal(world, "kp_1", "customer_me", "plan_subscriber")
    handle_event(world.deps, user_updated("ev_u1", "kp_1"), OLD)
    handle_event(world.deps, billing("ev_b1", "customer_me", user_id="kp_1", org_code="org_acme"), OLD)
    both = snapshot_of(world, "kp_1", "org_acme")
    assert limits(both) == {"api_calls": None, "projects": 3, "seats": 5}  # seats: 5 (org) beats 1 (personal)
    seats = next(f for f in both["features"] if f["feature_code"] == "seats")
    assert seats["granted_by"] == ["customer_me", "customer_org"]
    assert both["roles"] == ["role_client", "role_subscriber"]
    assert sorted(c["customer_id"] for c in both["customers"]) == ["customer_me", "customer_org"]


def test_a_member_who_joins_later_gets_the_orgs_features(world: World) -> None:
    world.kinde.features_by_plan = FEATURES
    paying_org(world, "org_acme", "customer_org", "plan_client", "kp_1")
    org_member(world, "org_acme", "kp_2")
    handle_event(world.deps, user_updated("ev_u2", "kp_2"), OLD)
    assert limits(snapshot_of(world, "kp_2", "org_acme")) == {"api_calls": None, "seats": 5}


def test_a_suspended_customer_keeps_its_plans_but_grants_no_features_until_it_pays(redis_url: str) -> None:
    world = build_world(redis_url, plans=SUSPEND)
    world.kinde.features_by_plan = FEATURES
    subscribed_client(world)
    assert limits(snapshot_of(world, "kp_1")) == {"api_calls": None, "seats": 5}

    handle_event(world.deps, payment("ev_f", "customer.payment_failed", "2026-11-22T10:00:00Z"), OLD)
    failing = snapshot_of(world, "kp_1")
    assert failing["features"] == []
    assert failing["roles"] == ["role_past_due"]
    assert (failing["customers"][0]["payment_standing"], failing["customers"][0]["suspended"]) == ("failing", True)
    assert [p["code"] for p in failing["plans"]] == ["plan_client"]

    handle_event(world.deps, payment("ev_s", "customer.payment_succeeded", "2026-11-22T11:00:00Z"), OLD)
    paid = snapshot_of(world, "kp_1")
    assert limits(paid) == {"api_calls": None, "seats": 5}
    assert (paid["customers"][0]["payment_standing"], paid["customers"][0]["suspended"]) == ("ok", False)


def test_with_entitlements_off_the_snapshot_lists_plans_and_roles_and_no_features(redis_url: str) -> None:
    world = build_world(redis_url, plans=OFF)
    signed_up(world)
    world.kinde.set_plan("customer_1", "plan_client")
    handle_event(world.deps, billing("ev_1", "customer_1"), OLD)
    found = snapshot_of(world, "kp_1")
    assert ([p["code"] for p in found["plans"]], found["features"], found["roles"]) == (
        ["plan_client"], [], ["role_client"])  # fmt: skip
    assert not any(c.startswith("GET /billing/entitlements") for c in world.kinde.calls)
    assert RedisEntitlementStore(world.redis).get("customer_1") is None


def _plan_change_calls(world: World) -> list[str]:
    world.kinde.features_by_plan = FEATURES
    world.kinde.add_user("kp_1", "customer_1")
    world.kinde.set_plan("customer_1", "plan_subscriber")
    handle_event(world.deps, user_created("ev_u", "kp_1"), OLD)
    world.kinde.set_plan("customer_1", "plan_client")
    before = len(world.kinde.calls)
    assert handle_event(world.deps, billing("ev_1", "customer_1"), OLD) == "converged"
    assert world.kinde.role_keys("org_default", "kp_1") == ["role_client"]
    return world.kinde.calls[before:]


def test_a_plan_change_costs_four_calls_with_the_snapshot_on(world: World) -> None:
    calls = _plan_change_calls(world)
    assert len(calls) <= 4, calls  # what is in force (entitlements), the roles held, one POST, one DELETE
    assert any(c.startswith("GET /billing/entitlements") for c in calls)
    assert not any(c.startswith("GET /billing/agreements") for c in calls)


def test_a_plan_change_costs_at_most_four_calls_with_the_snapshot_off(redis_url: str) -> None:
    calls = _plan_change_calls(build_world(redis_url, plans=OFF))
    assert len(calls) <= 4, calls


def test_a_deleted_users_snapshots_are_gone(world: World) -> None:
    signed_up(world)
    world.kinde.set_plan("customer_1", "plan_subscriber")
    handle_event(world.deps, billing("ev_1", "customer_1"), OLD)
    assert RedisSnapshotStore(world.redis).of_user("kp_1")
    deleted = {"type": "user.deleted", "event_id": "ev_d", "data": {"user": {"id": "kp_1"}}}
    handle_event(world.deps, deleted, OLD)
    assert RedisSnapshotStore(world.redis).of_user("kp_1") == []
