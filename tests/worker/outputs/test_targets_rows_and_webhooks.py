"""The table's rows and the app's `entitlements.updated` webhooks follow a target's changes:
sent once, removed when it leaves.

Real Redis (and real Postgres where the table is involved); Kinde is the recording fake of
tests/worker/fakes.py, as in the neighbouring tests.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest

from common.entitlements.grants import Target
from common.entitlements.snapshots import RedisSnapshotStore, SnapshotStore, TargetSnapshot
from tests.worker.conftest import World, build_world
from tests.worker.convergence.test_convergence import org_member, paying_org, personal, user_updated
from tests.worker.events.test_handlers import OLD, billing, user_created
from tests.worker.outputs.test_entitlements_table import Fed, fed
from worker.events.handlers import converge_customer, handle_event
from worker.outputs.notify import NotifyingSnapshots, notifying

pytestmark = pytest.mark.integration  # real Redis and PostgreSQL servers, one of them private


FEATURES = {"plan_subscriber": {"seats": 1}, "plan_client": {"seats": 5}}


def two_customers_at_one_target(world: World) -> None:
    """kp_1 in org_acme, covered by the org's customer and by the user's own customer there."""
    world.kinde.features_by_plan = FEATURES
    paying_org(world, "org_acme", "customer_org", "plan_client", "kp_1")
    personal(world, "kp_1", "customer_me", "plan_subscriber")
    handle_event(world.deps, user_updated("ev_u1", "kp_1"), OLD)
    handle_event(world.deps, billing("ev_b1", "customer_me", user_id="kp_1", org_code="org_acme"), OLD)


# --- 1. a reconcile pass of each covering customer, nothing changed: no webhook ---


def test_passes_of_two_covering_customers_that_change_nothing_send_no_webhook(redis_url: str) -> None:
    sent: list[dict[str, Any]] = []
    world = build_world(redis_url, notify=sent.append)
    two_customers_at_one_target(world)
    converge_customer(world.deps, "customer_org", "reconcile", "msg_r0")
    converge_customer(world.deps, "customer_me", "reconcile", "msg_r1")
    before = len(sent)
    # Each pass lists the target's sources with its own customer last; the order is no change.
    converge_customer(world.deps, "customer_org", "reconcile", "msg_r2")
    converge_customer(world.deps, "customer_me", "reconcile", "msg_r3")
    converge_customer(world.deps, "customer_org", "reconcile", "msg_r4")
    assert len(sent) == before, [s["body"] for s in sent[before:]]


# --- 4. an organization deleted in Kinde: what its members held there goes with it ---


def notified_table(redis_url: str, entitlements_db: str, sent: list[dict[str, Any]]) -> Fed:
    """The worker's stack: notifications around the table feed around snapshots (worker/entrypoints/bootstrap.py)."""
    table = fed(build_world(redis_url), entitlements_db)
    world = table.world
    assert world.deps.converger.snapshots is not None
    notified = notifying(world.deps.converger.snapshots, sent.append)
    world.deps = dataclasses.replace(
        world.deps, converger=dataclasses.replace(world.deps.converger, snapshots=notified)
    )
    return table


def test_a_deleted_org_takes_its_members_snapshots_rows_and_sends_removed(redis_url: str, entitlements_db: str) -> None:
    sent: list[dict[str, Any]] = []
    table = notified_table(redis_url, entitlements_db, sent)
    world = table.world
    world.kinde.features_by_plan = FEATURES
    paying_org(world, "org_acme", "customer_org", "plan_client", "kp_1", "kp_2")
    assert table.row("kp_1", "org_acme") is not None
    before = len(sent)
    for user in ("kp_1", "kp_2"):  # Kinde deletes the org, and its memberships with it
        world.kinde.users[user]["organizations"].remove("org_acme")
    del world.kinde.orgs["org_acme"], world.kinde.members["org_acme"]
    deleted = {"type": "organization.deleted", "event_id": "ev_od", "data": {"organization": {"code": "org_acme"}}}
    assert handle_event(world.deps, deleted, OLD) == "links_dropped"
    assert RedisSnapshotStore(world.redis).of_user("kp_1") == []  # the read API no longer shows the org
    assert (table.row("kp_1", "org_acme"), table.row("kp_2", "org_acme")) == (None, None)
    removed = sorted(json.loads(s["body"])["data"]["user_id"] for s in sent[before:])
    assert removed == ["kp_1", "kp_2"]
    table.table.close()


# --- held: a member who leaves a paying org loses the row at the org customer's next pass ---


def test_a_member_who_left_the_paying_org_loses_the_row_and_is_sent_removed(
    redis_url: str, entitlements_db: str
) -> None:
    sent: list[dict[str, Any]] = []
    table = notified_table(redis_url, entitlements_db, sent)
    world = table.world
    world.kinde.features_by_plan = FEATURES
    paying_org(world, "org_acme", "customer_org", "plan_client", "kp_1", "kp_2")
    assert table.row("kp_2", "org_acme") is not None
    world.kinde.users["kp_2"]["organizations"].remove("org_acme")
    world.kinde.members["org_acme"].remove("kp_2")
    before = len(sent)
    converge_customer(world.deps, "customer_org", "reconcile", "msg_r")
    assert table.row("kp_2", "org_acme") is None
    assert table.row("kp_1", "org_acme") is not None
    assert [json.loads(s["body"])["data"] for s in sent[before:]] == [
        {"org_code": "org_acme", "user_id": "kp_2", "removed": True}
    ]
    table.table.close()


def test_a_member_who_joined_by_event_and_left_before_the_orgs_pass_loses_the_row_and_is_sent_removed(
    redis_url: str, entitlements_db: str
) -> None:
    sent: list[dict[str, Any]] = []
    table = notified_table(redis_url, entitlements_db, sent)
    world = table.world
    world.kinde.features_by_plan = FEATURES
    paying_org(world, "org_acme", "customer_org", "plan_client", "kp_1")
    org_member(world, "org_acme", "kp_2")  # joins after the org's pass: converged from the event alone
    handle_event(world.deps, user_updated("ev_u2", "kp_2"), OLD)
    assert table.row("kp_2", "org_acme") is not None
    world.kinde.users["kp_2"]["organizations"].remove("org_acme")  # leaves before the org's next pass
    world.kinde.members["org_acme"].remove("kp_2")
    before = len(sent)
    converge_customer(world.deps, "customer_org", "reconcile", "msg_r")
    # was: the org's record never listed the join, so its pass never left it: row, snapshot and no webhook
    assert table.row("kp_2", "org_acme") is None
    held = [(s.roles, s.plans(), s.features()) for s in RedisSnapshotStore(world.redis).of_user("kp_2")]
    assert held in ([], [((), [], [])]), held  # the read API: nothing held there (the fake keeps the membership)
    assert world.kinde.role_keys("org_acme", "kp_2") == []
    assert [json.loads(s["body"])["data"] for s in sent[before:]] == [
        {"org_code": "org_acme", "user_id": "kp_2", "removed": True}
    ]
    table.table.close()


# --- held: a personal customer whose user moves to another org takes its row with it ---


def test_a_customer_that_moves_takes_its_row_and_notifies_both_targets(redis_url: str, entitlements_db: str) -> None:
    sent: list[dict[str, Any]] = []
    table = notified_table(redis_url, entitlements_db, sent)
    world = table.world
    world.kinde.features_by_plan = FEATURES
    world.kinde.add_user("kp_1", "customer_1", org="org_shop")
    world.kinde.set_plan("customer_1", "plan_subscriber")
    handle_event(world.deps, user_created("ev_u", "kp_1"), OLD)
    assert table.row("kp_1", "org_shop") is not None
    world.kinde.users["kp_1"]["organizations"] = ["org_other"]  # left the shop, joined another: placed there
    world.kinde.members["org_shop"].remove("kp_1")
    world.kinde.members.setdefault("org_other", []).append("kp_1")
    before = len(sent)
    handle_event(world.deps, user_updated("ev_u2", "kp_1"), OLD)  # its pass leaves the old target
    assert table.row("kp_1", "org_shop") is None
    assert table.row("kp_1", "org_other") is not None
    bodies = sorted((json.loads(s["body"])["data"]["org_code"], "removed" in json.loads(s["body"])["data"])
                    for s in sent[before:])  # fmt: skip
    assert bodies == [("org_other", False), ("org_shop", True)]
    table.table.close()


# --- held: only a feature's limit changed in Kinde (same plan): the reconcile pass tells the app ---


def test_a_feature_limit_changed_under_the_same_plan_is_sent_once(redis_url: str) -> None:
    sent: list[dict[str, Any]] = []
    world = build_world(redis_url, notify=sent.append)
    world.kinde.features_by_plan = {"plan_subscriber": {"seats": 1}}
    world.kinde.add_user("kp_1", "customer_1")
    world.kinde.set_plan("customer_1", "plan_subscriber")
    handle_event(world.deps, user_created("ev_u", "kp_1"), OLD)
    before = len(sent)
    world.kinde.features_by_plan = {"plan_subscriber": {"seats": 2}}  # roles and plans unchanged
    converge_customer(world.deps, "customer_1", "reconcile", "msg_r1")
    converge_customer(world.deps, "customer_1", "reconcile", "msg_r2")
    assert len(sent) == before + 1
    assert [f["limit_max"] for f in json.loads(sent[-1]["body"])["data"]["features"]] == [2]


# --- 8. user.deleted handled while a pass is about to store the user's snapshot ---


@dataclasses.dataclass
class DeletedMidPut:
    """A snapshot store whose first put of kp_1 lets a user.deleted be handled by another worker thread
    first (given up to a second): the pass holds the target's lease, the deletion ran beside it."""

    inner: SnapshotStore
    deleting: Callable[[], None]
    fired: bool = False

    def put(self, snapshot: TargetSnapshot) -> None:
        if not self.fired and snapshot.target.user_id == "kp_1":
            self.fired = True
            self.thread = threading.Thread(target=self.deleting)
            self.thread.start()
            self.thread.join(timeout=1.0)
        self.inner.put(snapshot)

    def remove(self, target: Target) -> None:
        self.inner.remove(target)

    def forget_user(self, user_id: str) -> None:
        self.inner.forget_user(user_id)

    def of_user(self, user_id: str) -> list[TargetSnapshot]:
        return self.inner.of_user(user_id)


def test_a_user_deleted_during_a_pass_keeps_no_snapshot_row_or_last_word(redis_url: str, entitlements_db: str) -> None:
    sent: list[dict[str, Any]] = []
    table = notified_table(redis_url, entitlements_db, sent)
    world = table.world
    world.kinde.add_user("kp_1", "customer_1")
    world.kinde.set_plan("customer_1", "plan_subscriber")
    handle_event(world.deps, user_created("ev_u", "kp_1"), OLD)
    assert table.row("kp_1") is not None
    deleted = {"type": "user.deleted", "event_id": "ev_del", "data": {"user": {"id": "kp_1"}}}
    notified = world.deps.converger.snapshots
    assert isinstance(notified, NotifyingSnapshots)
    racing = DeletedMidPut(notified.inner, lambda: handle_event(world.deps, deleted, OLD))
    world.deps = dataclasses.replace(
        world.deps, converger=dataclasses.replace(world.deps.converger, snapshots=notifying(racing, sent.append))
    )
    world.kinde.set_plan("customer_1", "plan_client")  # the pass: a plan change, read before the deletion
    handle_event(world.deps, billing("ev_1", "customer_1"), OLD)
    racing.thread.join(timeout=30)
    assert RedisSnapshotStore(world.redis).of_user("kp_1") == []  # the read API: 404 for a deleted user
    assert table.row("kp_1") is None
    assert json.loads(sent[-1]["body"])["data"] == {"org_code": "org_default", "user_id": "kp_1", "removed": True}
    table.table.close()


def test_a_user_deleted_during_its_first_pass_keeps_no_snapshot(redis_url: str, entitlements_db: str) -> None:
    sent: list[dict[str, Any]] = []
    table = notified_table(redis_url, entitlements_db, sent)
    world = table.world
    deleted = {"type": "user.deleted", "event_id": "ev_del", "data": {"user": {"id": "kp_1"}}}
    notified = world.deps.converger.snapshots
    assert isinstance(notified, NotifyingSnapshots)
    racing = DeletedMidPut(notified.inner, lambda: handle_event(world.deps, deleted, OLD))
    converger = dataclasses.replace(world.deps.converger, snapshots=notifying(racing, sent.append))
    world.deps = dataclasses.replace(world.deps, converger=converger)
    world.kinde.add_user("kp_1", "customer_1")
    world.kinde.set_plan("customer_1", "plan_subscriber")
    handle_event(world.deps, user_created("ev_u", "kp_1"), OLD)
    racing.thread.join(timeout=30)
    assert RedisSnapshotStore(world.redis).of_user("kp_1") == []
    assert table.row("kp_1") is None
    table.table.close()
