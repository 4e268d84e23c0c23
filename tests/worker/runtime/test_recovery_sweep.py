"""The recovery sweep puts a dead worker's messages back on their queues, once, and leaves live ones alone.

Real Valkey and Dramatiq's own broker and consumers: a "dead" broker fetches messages (their ids
enter its ack set) and then sends nothing more, its heartbeat left older than the timeout, exactly
what a SIGKILLed worker leaves behind; a live broker holds one message too. The crash bound itself
is measured end to end with real worker processes in tests/ops/test_recovery.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import pytest
import redis
from dramatiq.brokers.redis import MAINTENANCE_SCALE, RedisBroker

from common import keys
from common.settings import Settings
from worker.runtime.broker import build_broker
from worker.runtime.recovery import crash_bound_s
from worker.runtime.recovery.sweeper import sweep

pytestmark = pytest.mark.e2e
QUEUE = "recovery_sweep_test"
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return Settings.from_env({"REDIS_URL": redis_url, "ROLESYNC_HEARTBEAT_TIMEOUT_S": "60"})


@pytest.fixture
def sweeper(settings: Settings) -> Iterator[RedisBroker]:
    broker = build_broker(settings)
    broker.maintenance_chance = MAINTENANCE_SCALE
    yield broker
    broker.close()


def _stock_broker(redis_url: str) -> RedisBroker:
    return RedisBroker(client=redis.Redis.from_url(redis_url))  # type: ignore[no-untyped-call]


def _fetch(broker: RedisBroker, queue: str, count: int) -> list[str]:
    consumer = broker.consume(queue, prefetch=10, timeout=100)
    found = [message.args[0] for _ in range(count + 3) if (message := next(consumer)) is not None]
    assert len(found) == count
    return found


def _held(broker: RedisBroker, queue: str) -> set[bytes]:
    return set(broker.client.smembers(keys.ack_set(broker.broker_id, queue)))


def _queued(client: redis.Redis, queue: str) -> list[str]:
    ids: list[bytes] = client.lrange(keys.queue_list(queue), 0, -1)  # type: ignore[assignment]
    return sorted(i.decode() for i in ids)


def test_a_dead_workers_messages_go_back_once_and_a_live_workers_stay_held(
    redis_url: str, sweeper: RedisBroker
) -> None:
    dead, live = _stock_broker(redis_url), _stock_broker(redis_url)
    send = dramatiq.actor(lambda name: None, broker=dead, actor_name="swept", queue_name=QUEUE)
    for name in ("running", "prefetched"):
        dead.enqueue(send.message(name))
    dead.enqueue(send.message("delayed"), delay=3_600_000)
    _fetch(dead, QUEUE, 2)
    _fetch(dead, f"{QUEUE}.DQ", 1)
    dead_ids = {QUEUE: _held(dead, QUEUE), f"{QUEUE}.DQ": _held(dead, f"{QUEUE}.DQ")}
    dead.enqueue(send.message("held by the live one"))
    _fetch(live, QUEUE, 1)
    live_ids = _held(live, QUEUE)
    # The dead broker's last command was two timeouts ago: a worker killed then, never restarted.
    dead.client.zadd(keys.DRAMATIQ_HEARTBEATS, {dead.broker_id: (time.time() - 120) * 1000})

    for _ in range(2):  # a second sweep (or another replica's) must not push them again
        sweep(sweeper, grace_s=60, queues=[QUEUE])

    for queue, ids in dead_ids.items():
        assert _queued(sweeper.client, queue) == sorted(i.decode() for i in ids)
        assert _held(dead, queue) == set()
    assert _held(live, QUEUE) == live_ids
    assert dead.broker_id.encode() not in sweeper.client.zrange(keys.DRAMATIQ_HEARTBEATS, 0, -1)


def test_the_crash_bound_is_heartbeat_timeout_plus_sweep_interval_and_the_docs_state_the_default() -> None:
    fast = Settings.from_env({"ROLESYNC_HEARTBEAT_TIMEOUT_S": "3", "ROLESYNC_JANITOR_INTERVAL_S": "1"})
    assert crash_bound_s(fast) == 4
    defaults = Settings.from_env({})
    stated = f"{defaults.heartbeat_timeout_s} s + {defaults.janitor_interval_s} s = {crash_bound_s(defaults)} s"
    for doc in ("docs/reliability.md", "docs/architecture.md"):
        text = (ROOT / doc).read_text(encoding="utf-8")
        found = stated in " ".join(text.split())
        assert found, f"{doc} does not state the default crash bound: {stated}"
