"""The backlog gauge the autoscaler reads counts what Dramatiq's list length misses.

Real Valkey and a real Dramatiq RedisBroker: a ready message, a delayed one, and one fetched by a
consumer (in its ack set) are each counted where they wait.
"""

from __future__ import annotations

from collections.abc import Iterator

import dramatiq
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker
from prometheus_client import CollectorRegistry, generate_latest

from common import keys
from common.messages import CONVERGE_QUEUE, EVENTS_QUEUE, converge_message
from launch.processes import free_port
from ops.queues import queue_stats
from worker.runtime.backlog import METRIC, BacklogCollector, read_backlog

pytestmark = pytest.mark.e2e


@pytest.fixture
def broker(redis_url: str) -> Iterator[RedisBroker]:
    broker = RedisBroker(client=redis.Redis.from_url(redis_url))
    broker.declare_queue(CONVERGE_QUEUE)
    yield broker
    broker.close()


def _send(broker: RedisBroker, customer: str, delay_ms: int | None = None) -> None:
    broker.enqueue(converge_message(customer, "test"), delay=delay_ms)


def test_ready_delayed_and_fetched_messages_are_all_counted(broker: RedisBroker) -> None:
    for n in range(3):
        _send(broker, f"c{n}")
    _send(broker, "later", delay_ms=600_000)
    consumer = broker.consume(CONVERGE_QUEUE, prefetch=1, timeout=1000)
    fetched = next(consumer)
    assert fetched is not None

    found = read_backlog(broker.client, CONVERGE_QUEUE)

    list_length = broker.client.llen(keys.queue_list(CONVERGE_QUEUE))
    assert (found.ready, found.delayed, found.in_flight) == (list_length, 1, 1)
    assert found.total == 4 > list_length  # what a list-length scaler would have seen
    # on-call's `rolesync queues` counts with the same rule (issue 25, item 5: it had its own copy)
    stats = queue_stats(broker.client, CONVERGE_QUEUE)
    assert (stats.waiting, stats.delayed, stats.in_flight) == (found.ready, found.delayed, found.in_flight)
    consumer.close()


def test_the_gauge_reports_every_queue_by_state(broker: RedisBroker) -> None:
    _send(broker, "c1", delay_ms=600_000)
    registry = CollectorRegistry()
    registry.register(BacklogCollector(lambda: broker.client))

    text = generate_latest(registry).decode()

    assert f'{METRIC}{{queue="{CONVERGE_QUEUE}",state="delayed"}} 1.0' in text
    assert f'{METRIC}{{queue="{EVENTS_QUEUE}",state="ready"}} 0.0' in text


def test_redis_down_gives_no_series_rather_than_a_zero() -> None:
    dead = redis.Redis(port=free_port(), socket_connect_timeout=1, socket_timeout=1)
    registry = CollectorRegistry()
    registry.register(BacklogCollector(lambda: dead))

    assert METRIC not in generate_latest(registry).decode()


def test_messages_dramatiq_delays_land_where_the_gauge_looks(broker: RedisBroker) -> None:
    """Guards the key layout the gauge reads against a Dramatiq upgrade moving the delay queue."""
    message = dramatiq.Message(queue_name=CONVERGE_QUEUE, actor_name="x", args=(), kwargs={}, options={})
    broker.enqueue(message, delay=600_000)
    assert broker.client.llen(keys.delay_queue_list(CONVERGE_QUEUE)) == 1
