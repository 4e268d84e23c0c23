"""Bulk work stays behind fresh events (#14 item 3): the scope probe's replays, two bulk queues,
the paging alert's queue lag.

Real Valkey, an in-process Dramatiq `Worker` on our `build_broker`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import pytest
import redis
import yaml
from dramatiq import Worker
from dramatiq.brokers.redis import RedisBroker
from prometheus_client import REGISTRY

from common import keys
from common.infra.deadletters import FORBIDDEN, DeadLetter, RedisDeadLetterStore
from common.messages import BULK_PRIORITY, BULK_QUEUE, CONVERGE_QUEUE, EVENT_QUEUES, EVENTS_QUEUE, event_message
from common.settings import Settings
from launch.processes import wait_until
from worker.entrypoints import bootstrap
from worker.runtime.broker import build_broker
from worker.runtime.middleware import Observe
from worker.sweeps.scope_probe import build_prober

LOCAL = {"ROLESYNC_INSECURE_LOCAL": "1"}  # KINDE_DOMAIN below is http on loopback


pytestmark = pytest.mark.integration


ALERTS = Path(__file__).resolve().parents[3] / "docs" / "alerts.yml"


@pytest.fixture
def client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url, decode_responses=True)


@pytest.fixture
def broker(redis_url: str, client: redis.Redis) -> Iterator[RedisBroker]:
    bootstrap.use_deps(None, RedisDeadLetterStore(client))
    broker = build_broker(Settings.from_env({"REDIS_URL": redis_url}))
    yield broker
    broker.close()
    bootstrap.use_deps(None, None)


# --- 2. the scope probe replays dead letters onto the fresh queue -------------------------------------------


def test_the_scope_probes_replays_queue_behind_fresh_events(redis_url: str, client: redis.Redis) -> None:
    """Every event that failed for a missing scope is dead-lettered `forbidden` (all of them, for as long as
    the scope was missing); once granted, the probe replays them all at once. `rolesync dlq replay` sends
    replays to the bulk queue; the probe's replays went to the fresh one, ahead of every sign-up."""
    now = time.time()
    claims = {"type": "customer.plan_changed", "event_id": "ev_forbidden", "data": {"customer_id": "customer_f"}}
    record = DeadLetter("ev_forbidden", claims, FORBIDDEN, "forbidden", 1, now, now, "customer_f",
                        "customer.plan_changed")  # fmt: skip
    RedisDeadLetterStore(client).put(record)
    prober = build_prober(Settings.from_env({"REDIS_URL": redis_url, "KINDE_DOMAIN": "http://127.0.0.1:9", **LOCAL}))
    assert "re-enqueued" in prober.replayer.replay(record)
    assert (client.llen(keys.queue_list(EVENTS_QUEUE)), client.llen(keys.queue_list(BULK_QUEUE))) == (0, 1)


# --- 3. two bulk queues together hold every worker thread ---------------------------------------------------


def test_bulk_work_from_two_bulk_queues_leaves_a_thread_for_a_fresh_event(broker: RedisBroker) -> None:
    started: list[str] = []
    release = threading.Event()

    def bulk_pass(name: str) -> None:
        started.append(name)
        release.wait(30)

    def fresh_event() -> None:
        started.append("fresh")

    for queue in (BULK_QUEUE, CONVERGE_QUEUE):  # a webhook burst and a reconcile sweep at once
        sweep = dramatiq.actor(bulk_pass, broker=broker, actor_name=f"pass_{queue}", queue_name=queue,
                               priority=BULK_PRIORITY, max_retries=0)  # fmt: skip
        sweep.send(queue)
    fresh = dramatiq.actor(fresh_event, broker=broker, actor_name="fresh_event", queue_name=EVENTS_QUEUE, max_retries=0)
    worker = Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        wait_until(lambda: started, timeout=20, what="a bulk pass started")
        with contextlib.suppress(TimeoutError):  # with the budget shared, the second never starts
            wait_until(lambda: len(started) == 2, timeout=3, what="both bulk passes started")
        fresh.send()  # a sign-up arriving while they run
        wait_until(lambda: "fresh" in started, timeout=10, what="the fresh event ran beside the bulk passes")
    finally:
        release.set()
        worker.stop(timeout=10_000)


# --- 5. a burst of bulk-routed webhooks pages on-call for queue lag ------------------------------------------


def test_the_paging_queue_lag_is_the_fresh_queues_alone() -> None:
    """Bulk-routed webhooks wait behind fresh ones by design, minutes in a migration's burst; in one
    unlabelled histogram they made the p95 that pages (docs/alerts.yml) and hid the fresh queue's own."""
    rule = next(r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]
                if r["alert"] == "RolesyncQueueLag")  # fmt: skip
    assert f'rolesync_queue_lag_seconds_bucket{{queue="{EVENTS_QUEUE}"}}' in rule["expr"]

    def observed(queue: str) -> float:
        return REGISTRY.get_sample_value("rolesync_queue_lag_seconds_count", {"queue": queue}) or 0.0

    before = {q: observed(q) for q in EVENT_QUEUES}
    received = {"received_at": time.time() - 600, "webhook_id": None}
    for bulk in (True, True, False):
        Observe().before_process_message(None, event_message({"type": "customer.plan_changed"}, None, 0.0, bulk=bulk)
                                         .copy(args=({"type": "customer.plan_changed"}, received)))  # fmt: skip
    assert {q: observed(q) - before[q] for q in before} == {EVENTS_QUEUE: 1.0, BULK_QUEUE: 2.0}
