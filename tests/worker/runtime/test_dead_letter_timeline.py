"""A customer's timeline lists every dead letter written for it and every replay of one, on real Valkey.

Dead letters: a real Dramatiq `Worker` on our `build_broker`, whose middleware writes them
(`retries_exhausted`, `kinde_forbidden`, `kinde_<CODE>`); `customer_unresolved` parking is covered in
tests/worker/customers/test_usage_history.py. Replays: `rolesync dlq replay` (on-call) and the replayer the
scope probe builds (worker/sweeps/scope_probe.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
import redis
from click.testing import CliRunner
from dramatiq import Worker
from dramatiq.brokers.redis import RedisBroker

from cli.main import cli
from common.customers.history import RedisHistory
from common.errors import ForbiddenError, RetryableError
from common.infra.deadletters import FORBIDDEN, RETRIES_EXHAUSTED, DeadLetter, RedisDeadLetterStore
from common.settings import Settings
from launch.processes import wait_until
from worker.entrypoints import bootstrap
from worker.runtime.broker import build_broker
from worker.sweeps.scope_probe import build_prober

LOCAL = {"ROLESYNC_INSECURE_LOCAL": "1"}  # KINDE_DOMAIN below is http on loopback

pytestmark = pytest.mark.e2e
QUEUE = "dead_letter_timeline_test"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.secret-looking.token"


def claims(event_id: str, customer_id: str) -> dict[str, Any]:
    return {"type": "customer.plan_changed", "event_id": event_id, "data": {"customer_id": customer_id},
            "token": TOKEN}  # fmt: skip


@pytest.fixture
def client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url, decode_responses=True)


@pytest.fixture
def history(client: redis.Redis) -> RedisHistory:
    return RedisHistory(client, ttl_s=3600)


@pytest.fixture
def broker(redis_url: str, client: redis.Redis, history: RedisHistory) -> Iterator[RedisBroker]:
    bootstrap.use_deps(None, RedisDeadLetterStore(client), history)
    broker = build_broker(Settings.from_env({"REDIS_URL": redis_url}))
    yield broker
    broker.close()
    bootstrap.use_deps(None, None)


def dead_letters_on_timeline(history: RedisHistory, customer_id: str) -> list[dict[str, Any]]:
    return [e for e in history.recent(customer_id) if e["kind"] == "dead_letter"]


def test_dead_letters_the_worker_writes_are_on_the_customers_timeline(
    broker: RedisBroker, history: RedisHistory
) -> None:
    def refused(claims: dict[str, Any]) -> None:
        raise ForbiddenError("Kinde refused", endpoint="GET /billing/agreements", scope="read:billing_agreements")

    def broken(claims: dict[str, Any]) -> None:
        raise RetryableError("Kinde is down")  # an outage past its budget of 0 retries: retries_exhausted

    options = {"broker": broker, "queue_name": QUEUE, "max_retries": 0, "throws": (ForbiddenError,)}
    forbidding = dramatiq.actor(refused, actor_name="refused_for_scope", **options)
    failing = dramatiq.actor(broken, actor_name="broken_for_good", **options)
    worker = Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        forbidding.send(claims("ev_forbidden", "customer_t1"))
        failing.send(claims("ev_exhausted", "customer_t2"))
        wait_until(lambda: dead_letters_on_timeline(history, "customer_t1"), timeout=30, what="kinde_forbidden entry")
        wait_until(lambda: dead_letters_on_timeline(history, "customer_t2"), timeout=30, what="exhausted entry")
    finally:
        worker.stop(timeout=5000)
    [forbidden] = dead_letters_on_timeline(history, "customer_t1")
    assert (forbidden["reason"], forbidden["event_id"], forbidden["scope"]) == (
        FORBIDDEN,
        "ev_forbidden",
        "read:billing_agreements",
    )
    [exhausted] = dead_letters_on_timeline(history, "customer_t2")
    assert (exhausted["reason"], exhausted["event_id"], exhausted["type"]) == (
        RETRIES_EXHAUSTED,
        "ev_exhausted",
        "customer.plan_changed",
    )
    assert TOKEN not in json.dumps([forbidden, exhausted])


def stored(client: redis.Redis, event_id: str, customer_id: str, reason: str) -> DeadLetter:
    now = time.time()
    record = DeadLetter(event_id, claims(event_id, customer_id), reason, "failed", 3, now, now, customer_id,
                        "customer.plan_changed")  # fmt: skip
    return RedisDeadLetterStore(client).put(record)


def test_on_calls_replay_is_on_the_customers_timeline(redis_url: str, client: redis.Redis) -> None:
    stored(client, "ev_replayed", "customer_t3", RETRIES_EXHAUSTED)
    argv = ["dlq", "replay", "ev_replayed", "--reason", "test", "--by", "alice"]
    result = CliRunner().invoke(cli, argv, env={"REDIS_URL": redis_url})
    assert result.exit_code == 0, result.output
    entries = [e for e in RedisHistory(client, ttl_s=60).recent("customer_t3") if e["kind"] == "replayed"]
    assert [(e["reason"], e["event_id"], e["by"]) for e in entries] == [(RETRIES_EXHAUSTED, "ev_replayed", "alice")]
    assert RedisDeadLetterStore(client).get("ev_replayed") is None
    assert TOKEN not in json.dumps(entries)
    shown = CliRunner().invoke(cli, ["customers", "history", "customer_t3"], env={"REDIS_URL": redis_url})
    assert "replayed" in shown.output
    assert "event_id=ev_replayed" in shown.output


def test_the_scope_probes_replays_are_on_the_customers_timeline(redis_url: str, client: redis.Redis) -> None:
    record = stored(client, "ev_scoped", "customer_t4", FORBIDDEN)
    prober = build_prober(Settings.from_env({"REDIS_URL": redis_url, "KINDE_DOMAIN": "http://127.0.0.1:9", **LOCAL}))
    sentence = prober.replayer.replay(record)  # what replay_granted does once the endpoint answers
    assert "re-enqueued" in sentence
    entries = [e for e in RedisHistory(client, ttl_s=60).recent("customer_t4") if e["kind"] == "replayed"]
    assert [(e["reason"], e["event_id"], e["by"]) for e in entries] == [(FORBIDDEN, "ev_scoped", "scope_probe")]
