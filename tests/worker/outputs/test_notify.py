"""Which passes queue an `entitlements.updated` webhook: only those that change what a target holds.

Real Redis and the real handlers with a recording fake Kinde; the queued notifications are collected
instead of sent to Dramatiq (their delivery: tests/worker/outputs/test_notify_delivery.py).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from common.entitlements.customer import Feature, PlanHeld
from common.entitlements.grants import Target
from common.entitlements.snapshots import RedisSnapshotStore, Source, TargetSnapshot
from common.errors import RetryableError
from common.table.table_rows import row_of
from tests.worker.conftest import World, build_world
from tests.worker.events.test_handlers import OLD, billing, user_created
from worker.events.handlers import converge_customer, handle_event
from worker.outputs.notify import NOTIFICATION_TYPE, NotifyingSnapshots, held, notification

FEATURES = {"plan_subscriber": {"seats": 1}, "plan_client": {"seats": 5}}


@pytest.fixture
def sent_world(redis_url: str) -> tuple[World, list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []
    return build_world(redis_url, notify=sent.append), sent


def body(notification: dict[str, Any]) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(notification["body"])
    return parsed


def test_a_plan_change_sends_one_webhook_and_a_pass_that_changes_nothing_sends_none(
    sent_world: tuple[World, list[dict[str, Any]]],
) -> None:
    world, sent = sent_world
    world.kinde.features_by_plan = FEATURES
    world.kinde.add_user("kp_1", "customer_1")
    handle_event(world.deps, user_created("ev_u", "kp_1"), OLD)
    assert sent == []  # a member holding nothing yet: nothing changed for the app

    world.kinde.set_plan("customer_1", "plan_subscriber")
    handle_event(world.deps, billing("ev_1", "customer_1"), OLD)
    assert len(sent) == 1
    first = body(sent[0])
    assert (first["type"], first["data"]["org_code"], first["data"]["user_id"]) == (
        NOTIFICATION_TYPE,
        "org_default",
        "kp_1",
    )
    assert first["data"]["roles"] == ["role_subscriber"]
    assert [f["feature_code"] for f in first["data"]["features"]] == ["seats"]
    assert first["timestamp"].endswith("Z")
    assert sent[0]["event_id"].startswith("msg_")

    handle_event(world.deps, billing("ev_2", "customer_1", "customer.payment_succeeded"), OLD)  # new generation
    converge_customer(world.deps, "customer_1", "reconcile", "msg_r")  # re-reads the entitlements: new read times
    assert len(sent) == 1

    world.kinde.set_plan("customer_1", "plan_client")
    handle_event(world.deps, billing("ev_3", "customer_1"), OLD)
    assert len(sent) == 2
    assert body(sent[1])["data"]["roles"] == ["role_client"]
    assert sent[1]["event_id"] != sent[0]["event_id"]

    world.kinde.set_plan("customer_1", None)
    handle_event(world.deps, billing("ev_4", "customer_1"), OLD)
    assert len(sent) == 3
    assert body(sent[2])["data"] == {"org_code": "org_default", "user_id": "kp_1", "removed": True}


def test_a_deleted_user_sends_removed_for_each_target_it_held(sent_world: tuple[World, list[dict[str, Any]]]) -> None:
    world, sent = sent_world
    world.kinde.add_user("kp_1", "customer_1")
    world.kinde.set_plan("customer_1", "plan_subscriber")
    handle_event(world.deps, user_created("ev_u", "kp_1"), OLD)
    assert len(sent) == 1
    handle_event(world.deps, {"type": "user.deleted", "event_id": "ev_d", "data": {"user": {"id": "kp_1"}}}, OLD)
    assert [body(n)["data"] for n in sent[1:]] == [{"org_code": "org_default", "user_id": "kp_1", "removed": True}]
    assert RedisSnapshotStore(world.redis).of_user("kp_1") == []


def test_a_webhook_that_cannot_be_queued_fails_the_write_so_the_retry_finds_the_change_again(
    sent_world: tuple[World, list[dict[str, Any]]],
) -> None:
    world, _ = sent_world
    store, sent, down = RedisSnapshotStore(world.redis), [], [True]

    def send(notification: dict[str, Any]) -> None:
        if down[0]:
            raise RetryableError("Redis unavailable while queueing")
        sent.append(notification)

    notifying = NotifyingSnapshots(store, send)
    snapshot = TargetSnapshot(Target("org_a", "kp_9"), ("role_subscriber",), (), 1.0)
    with pytest.raises(RetryableError):
        notifying.put(snapshot)
    assert store.of_user("kp_9") == []  # not stored: the pass's retry compares against the old state
    down[0] = False
    notifying.put(snapshot)
    notifying.put(TargetSnapshot(snapshot.target, snapshot.roles, (), 2.0))  # only computed_at differs
    assert len(sent) == 1
    notifying.remove(snapshot.target)
    notifying.remove(snapshot.target)  # already gone: nothing more to tell
    assert [body(n)["data"]["removed"] for n in sent[1:]] == [True]


def test_what_a_target_holds_ignores_times_and_generations() -> None:
    target = Target("org_a", "kp_1")
    assert held(None) is None
    assert held(TargetSnapshot(target, (), (), 5.0)) is None  # holds nothing: same as no snapshot
    a, b = TargetSnapshot(target, ("r",), (), 1.0), TargetSnapshot(target, ("r",), (), 9.0)
    assert held(a) == held(b)
    assert held(a) != held(TargetSnapshot(target, ("r", "s"), (), 1.0))


def _source(plans: tuple[str, ...] = (), features: tuple[str, ...] = ()) -> Source:
    return Source("cus_1", tuple(PlanHeld(p) for p in plans), tuple(Feature(f) for f in features), (), "failing",
                  True, 1, 1.0, None)  # fmt: skip


@pytest.mark.parametrize(
    ("roles", "sources", "nothing"),
    [
        ((), (), True),
        ((), (_source(),), True),  # covered by a customer with no plan: still nothing
        (("r",), (), False),
        ((), (_source(plans=("plan_x",)),), False),  # suspended: plans listed, no roles, no features
        ((), (_source(features=("seats",)),), False),
    ],
    ids=["empty", "planless-source", "roles", "plans-only", "features-only"],
)
def test_the_app_and_the_table_agree_on_a_target_that_holds_nothing(
    roles: tuple[str, ...], sources: tuple[Source, ...], nothing: bool
) -> None:
    """One predicate: notify sends `removed` exactly where the entitlements table deletes the row."""
    snapshot = TargetSnapshot(Target("org_a", "kp_1"), roles, sources, 1.0)
    assert snapshot.holds_nothing() is nothing
    assert (held(snapshot) is None) is nothing
    assert (row_of(snapshot, lambda _: {}) is None) is nothing
    assert ("removed" in json.loads(notification(snapshot.target, snapshot, 1.0)["body"])["data"]) is nothing
