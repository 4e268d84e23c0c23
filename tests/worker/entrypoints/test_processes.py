"""The worker as shipped: two `rolesync worker` processes, the sandbox over HTTP, the real ingest, real Redis.

One pipe per module (launch/pipe.py: sandbox → signed webhooks → uvicorn ingest → Redis → two Dramatiq worker
processes → sandbox Management API). Tests use fresh users and customers so they never collide;
some inject a single event straight into the queue, as a Dramatiq redelivery would.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker

from common import keys
from common.entitlements.grants import RedisGrantStore
from common.infra.deadletters import RedisDeadLetterStore
from common.messages import EVENT_QUEUES, converge_message, event_message
from common.settings import Settings
from launch.pipe import Pipe, PipeOptions, running_pipe
from launch.processes import Child, free_port, wait_until
from launch.redis_server import RunningRedis
from ops.status import gather
from ops.stores import open_stores
from sandbox.client import SandboxClient
from sandbox.tokens import ALL_SCOPES

pytestmark = pytest.mark.e2e
PLANS = '[plans]\nplan_subscriber = ["role_subscriber"]\nplan_client = ["role_client"]\n'
WORKER_DB = 3
PROBE_INTERVAL_S = 1


@dataclass(frozen=True)
class Harness:
    """The launched pipe (launch/pipe.py) with what these tests drive it through."""

    pipe: Pipe
    redis: redis.Redis
    broker: RedisBroker
    metrics_url: str

    @property
    def kinde(self) -> SandboxClient:
        return self.pipe.kinde

    @property
    def workers(self) -> list[Child]:
        return self.pipe.workers

    @property
    def env(self) -> dict[str, str]:
        return self.pipe.env

    def roles_become(self, user_id: str, expected: list[str], org: str | None = None, timeout: float = 30) -> None:
        check = lambda: self.kinde.user_roles(user_id, org) == sorted(expected)  # noqa: E731
        wait_until(check, timeout=timeout, what=f"roles of {user_id} to become {expected}")

    def inject(self, claims: dict[str, Any]) -> None:
        self.broker.enqueue(event_message(claims, None, time.time()))

    def queues_idle(self) -> bool:
        """Nothing queued, and nothing delayed that is due within a minute (parked re-checks wait longer)."""
        queued = sum(self.redis.hlen(keys.queue_messages(q)) for q in EVENT_QUEUES)
        return queued == 0 and self.delayed_soon() == 0

    def settled(self) -> bool:
        """The sandbox has delivered every webhook it owes, and the queues are idle."""
        return self.kinde.pending_deliveries() == 0 and self.queues_idle()

    def delayed_soon(self) -> int:
        horizon_ms = (time.time() + 60) * 1000
        raws = [raw for q in EVENT_QUEUES for raw in self.redis.hvals(keys.delay_queue_messages(q))]
        return sum(1 for raw in raws if json.loads(raw)["options"].get("eta", 0) < horizon_ms)

    def writes_for(self, user_id: str) -> list[str]:
        return [
            f"{c['method']} {c['path']}"
            for c in self.kinde.calls()
            if c["method"] in ("POST", "DELETE") and user_id in c["path"]
        ]


ENV = {"KINDE_API_RPS": "50", "ROLESYNC_SCOPE_PROBE_INTERVAL_S": str(PROBE_INTERVAL_S)}


@pytest.fixture(scope="module")
def pipe(redis_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    redis_url = f"{redis_server_url}/{WORKER_DB}"
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.flushdb()
    options = PipeOptions(workers=1, plans_toml=PLANS, env=ENV)
    with running_pipe(tmp_path_factory.mktemp("worker"), options, redis_server=RunningRedis(redis_url)) as launched:
        metrics_port = free_port()  # one of the two workers serves /metrics
        launched.start_worker(1, env={"ROLESYNC_WORKER_METRICS_PORT": str(metrics_port)})
        broker = RedisBroker(client=redis.Redis.from_url(redis_url))
        try:
            yield Harness(launched, client, broker, f"http://127.0.0.1:{metrics_port}/metrics")
        finally:
            broker.close()


def linked_user(pipe: Harness, plan: str | None = None) -> dict[str, Any]:
    user = pipe.kinde.create_user(email=f"{uuid.uuid4().hex[:8]}@example.com")
    wait_until(lambda: pipe.redis.exists(keys.customer_link(user["customer_id"])), timeout=20, what="link learned")
    if plan:
        pipe.kinde.change_plan(user["customer_id"], plan)
        pipe.roles_become(user["id"], [f"role_{plan.removeprefix('plan_')}"])
    return user


def test_an_event_delivered_three_times_at_once_writes_once(pipe: Harness) -> None:
    user = linked_user(pipe, "plan_subscriber")
    pipe.kinde.set_webhooks(paused=True)  # the sandbox's own events would also converge: hold them back
    try:
        pipe.kinde.change_plan(user["customer_id"], "plan_client")
        before = pipe.writes_for(user["id"])
        claims = {
            "type": "customer.plan_changed",
            "event_id": f"event_{uuid.uuid4().hex}",
            "data": {"customer_id": user["customer_id"]},
        }
        threads = [threading.Thread(target=pipe.inject, args=(claims,)) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        pipe.roles_become(user["id"], ["role_client"])
        wait_until(pipe.queues_idle, timeout=20, what="all three copies handled")
        added = pipe.writes_for(user["id"])[len(before) :]
        assert len(added) == 2  # one POST role_client, one DELETE role_subscriber, whatever the copies
        assert sorted(c.split()[0] for c in added) == ["DELETE", "POST"]
    finally:
        pipe.kinde.set_webhooks(paused=False)


def test_an_event_on_the_bulk_queue_converges_like_a_fresh_one(pipe: Harness) -> None:
    """What the ingest routes as bulk during a burst, or `rolesync dlq replay` sends, runs the same handler."""
    user = linked_user(pipe, "plan_subscriber")
    pipe.kinde.set_webhooks(paused=True)  # only the bulk copy may converge it
    try:
        pipe.kinde.change_plan(user["customer_id"], "plan_client")
        claims = {"type": "customer.plan_changed", "event_id": f"event_{uuid.uuid4().hex}",
                  "data": {"customer_id": user["customer_id"]}}  # fmt: skip
        pipe.broker.enqueue(event_message(claims, None, time.time(), bulk=True))
        pipe.roles_become(user["id"], ["role_client"])
    finally:
        pipe.kinde.set_webhooks(paused=False)


def test_a_burst_for_one_customer_across_two_workers_never_ends_stale(pipe: Harness) -> None:
    user = linked_user(pipe)
    plans = ["plan_subscriber", "plan_client", "plan_subscriber", "plan_client", None, "plan_client", "plan_subscriber"]
    for plan in plans:
        if plan:
            pipe.kinde.change_plan(user["customer_id"], plan)
        else:
            pipe.kinde.cancel_plan(user["customer_id"])
    pipe.roles_become(user["id"], ["role_subscriber"])
    wait_until(pipe.queues_idle, timeout=30, what="the burst handled")
    assert pipe.kinde.user_roles(user["id"]) == ["role_subscriber"]


def test_an_unknown_customer_is_parked_then_converged_once_its_link_is_learned(pipe: Harness) -> None:
    pipe.redis.set(keys.REBUILD_LEASE, "held_by_the_test", px=3_600_000)  # no rebuild may find the user
    pipe.kinde.set_webhooks(variant="flat")  # billing events naming only the customer, never its owner
    try:
        user = pipe.kinde.create_user(email=f"{uuid.uuid4().hex[:8]}@example.com", send_webhook=False)
        pipe.kinde.change_plan(user["customer_id"], "plan_client")
        store = RedisDeadLetterStore(pipe.redis)
        parked = wait_until(lambda: store.list(customer_id=user["customer_id"]), timeout=30, what="event parked")
        assert {r.reason for r in parked} == {"customer_unresolved"}
        assert pipe.kinde.user_roles(user["id"]) == []
        pipe.kinde.send_event("user.updated", {"user": {"id": user["id"]}})  # a later webhook names the user
        pipe.roles_become(user["id"], ["role_client"])
        wait_until(lambda: not store.of_customer(user["customer_id"]), timeout=20, what="parked events replayed")
    finally:
        pipe.redis.delete(keys.REBUILD_LEASE, keys.REBUILD_CURSOR, keys.REBUILD_STARTED, keys.REBUILD_REQUESTED)
        pipe.kinde.set_webhooks(variant="mix")


def test_an_admin_role_given_by_hand_survives_every_plan_change(pipe: Harness) -> None:
    user = linked_user(pipe, "plan_subscriber")
    pipe.kinde.grant_role(user["id"], "role_admin")
    for plan, expected in [
        ("plan_client", ["role_admin", "role_client"]),
        (None, ["role_admin"]),
        ("plan_subscriber", ["role_admin", "role_subscriber"]),
    ]:
        pipe.kinde.change_plan(user["customer_id"], plan) if plan else pipe.kinde.cancel_plan(user["customer_id"])
        pipe.roles_become(user["id"], expected)


def test_a_b2b_org_plan_gives_every_member_the_role_and_cancel_takes_it_away(pipe: Harness) -> None:
    org = pipe.kinde.create_org(name=f"Acme {uuid.uuid4().hex[:6]}")
    members = [pipe.kinde.create_user(org_code=org["code"], with_customer=False)["id"] for _ in range(3)]
    wait_until(lambda: pipe.redis.exists(keys.customer_link(org["customer_id"])), timeout=20, what="org link learned")
    pipe.kinde.change_plan(org["customer_id"], "plan_client")
    for member in members:
        pipe.roles_become(member, ["role_client"], org["code"])
    pipe.kinde.cancel_plan(org["customer_id"])
    for member in members:
        pipe.roles_become(member, [], org["code"])


def test_a_missing_scope_parks_the_event_until_a_probe_sees_the_scope_back(pipe: Harness) -> None:
    user = linked_user(pipe)
    store = RedisDeadLetterStore(pipe.redis)
    # with the snapshot on the pass reads the entitlements, and the agreements only when that read fails
    # (worker/convergence/in_force.py): without either scope it cannot tell which plans are in force
    pipe.kinde.set_scopes([s for s in ALL_SCOPES if s not in ("read:billing_agreements", "read:billing_entitlements")])
    try:
        pipe.kinde.change_plan(user["customer_id"], "plan_client")
        letters = wait_until(lambda: store.list(customer_id=user["customer_id"]), timeout=30, what="parked event")
        assert {(r.reason, r.scope, r.endpoint) for r in letters} == {
            ("kinde_forbidden", "read:billing_agreements", "GET /billing/agreements")
        }
        assert letters[0].attempts == 1  # not retried on a back-off: it waits for the scope
        status = gather(open_stores(Settings.from_env(pipe.env)), Settings.from_env(pipe.env))
        assert status.waiting_on_scopes["read:billing_agreements"] >= 1
        assert any("read:billing_agreements" in p for p in status.problems)
        time.sleep(3 * PROBE_INTERVAL_S)  # several probes answered 403: the events still wait, none lost
        assert {r.id for r in store.list(customer_id=user["customer_id"])} >= {r.id for r in letters}
        assert pipe.kinde.user_roles(user["id"]) == []
    finally:
        pipe.kinde.set_scopes(list(ALL_SCOPES))
    pipe.roles_become(user["id"], ["role_client"], timeout=60)  # no replay by hand
    wait_until(lambda: not store.list(customer_id=user["customer_id"]), timeout=30, what="parked events replayed")


def test_a_429_storm_converges_everyone_through_delayed_retries(pipe: Harness) -> None:
    users = [linked_user(pipe) for _ in range(4)]
    wait_until(pipe.queues_idle, timeout=20, what="sign-ups handled")
    start, delayed = len(pipe.kinde.calls()), [0]
    pipe.kinde.set_rate_limit(5.0, burst=2)  # far below the workers' KINDE_API_RPS=50
    try:
        for user in users:
            pipe.kinde.change_plan(user["customer_id"], "plan_client")
        for user in users:
            wait_until(
                lambda u=user: delayed.append(pipe.delayed_soon()) or pipe.kinde.user_roles(u["id"]) == ["role_client"],
                timeout=60, what="roles under a 429 storm",
            )  # fmt: skip
    finally:
        pipe.kinde.set_rate_limit(0)
    statuses = [c["status"] for c in pipe.kinde.calls()[start:]]
    assert statuses.count(429) > 0
    assert max(delayed) > 0  # the waits went back to the broker's delay queue, not into sleeping threads
    assert all(p.alive() for p in pipe.workers)


def test_worker_metrics_count_events_and_kinde_calls(pipe: Harness) -> None:
    linked_user(pipe, "plan_client")

    def scrape() -> str:
        try:
            return httpx.get(pipe.metrics_url, timeout=2).text
        except httpx.HTTPError:
            return ""

    text = wait_until(lambda: "rolesync_worker_events_total" in scrape() and scrape(), timeout=20, what="metrics")
    assert 'outcome="converged"' in text
    assert 'rolesync_kinde_calls_total{endpoint="GET /billing/entitlements",status="200"}' in text
    assert "rolesync_event_to_converged_seconds_bucket" in text
    # The autoscaler's signal (worker/runtime/backlog.py), read from Redis by the metrics process itself.
    assert 'rolesync_queue_backlog_messages{queue="rolesync-events",state="delayed"}' in text


def org_targets(pipe: Harness, customer_id: str) -> set[str]:
    record = RedisGrantStore(pipe.redis).get(customer_id)
    return {t.user_id for t in record.targets} if record else set()


def test_a_member_joining_a_paying_org_gets_its_roles_leaving_loses_them_rejoining_regains_them(pipe: Harness) -> None:
    org = pipe.kinde.create_org(name=f"Join {uuid.uuid4().hex[:6]}")
    founder = pipe.kinde.create_user(org_code=org["code"], with_customer=False)["id"]
    wait_until(lambda: pipe.redis.exists(keys.customer_link(org["customer_id"])), timeout=20, what="org link learned")
    pipe.kinde.change_plan(org["customer_id"], "plan_client")
    pipe.roles_become(founder, ["role_client"], org["code"])
    # Every event of the plan change delivered and handled: one the sandbox still owed (a change fires
    # several, delivered one by one) would run an org pass after the join below.
    wait_until(pipe.settled, timeout=20, what="the org's pass done")
    joiner = pipe.kinde.create_user(email=f"{uuid.uuid4().hex[:8]}@example.com", with_customer=False)["id"]
    before = RedisGrantStore(pipe.redis).get(org["customer_id"])

    pipe.kinde.add_user_to_org(joiner, org["code"], send_webhook=True)  # user.updated listing the new org
    pipe.roles_become(joiner, ["role_client"], org["code"])
    after = RedisGrantStore(pipe.redis).get(org["customer_id"])
    assert before
    assert after
    assert after.read_at == before.read_at  # from the user event alone: no org pass ran
    assert joiner in org_targets(pipe, org["customer_id"])  # ... and the join's target is on the org's record

    # Leaving: Kinde sends no membership-removed event; the org customer's next pass (here a billing event
    # of the org) drops the member from its record and writes nothing for it there.
    pipe.kinde.remove_user_from_org(joiner, org["code"], send_webhook=True)
    pipe.kinde.change_plan(org["customer_id"], "plan_subscriber")
    pipe.roles_become(founder, ["role_subscriber"], org["code"])
    wait_until(lambda: founder in org_targets(pipe, org["customer_id"]), timeout=20, what="the org's record")
    assert joiner not in org_targets(pipe, org["customer_id"])
    assert not RedisDeadLetterStore(pipe.redis).of_customer(org["customer_id"])

    pipe.kinde.add_user_to_org(joiner, org["code"], send_webhook=True)
    pipe.roles_become(joiner, ["role_subscriber"], org["code"])  # re-joining regains today's roles

    # Leaving with no webhook at all: a reconcile (one converge_customer message per customer) drops it.
    pipe.kinde.remove_user_from_org(joiner, org["code"])
    pipe.broker.enqueue(converge_message(org["customer_id"], "reconcile"))
    wait_until(lambda: joiner not in org_targets(pipe, org["customer_id"]), timeout=30, what="the member dropped")
    pipe.kinde.add_user_to_org(joiner, org["code"])  # back again, unannounced: the next reconcile restores them
    pipe.broker.enqueue(converge_message(org["customer_id"], "reconcile"))
    pipe.roles_become(joiner, ["role_subscriber"], org["code"])
