"""The one "is the pipe idle?" check (bench/pipe_idle.py) over a real Dramatiq Redis broker on embedded Valkey:
a message queued, delayed or held by a consumer keeps it busy; acked, it is idle again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker

from bench.pipe_idle import idle, unfinished

pytestmark = pytest.mark.integration
QUEUE = "pipe_idle_probe"  # its own queue: the server is shared with other tests


@pytest.fixture
def broker(redis_url: str) -> Iterator[RedisBroker]:
    found = RedisBroker(client=redis.Redis.from_url(redis_url))
    found.declare_queue(QUEUE)
    found.flush(QUEUE)
    yield found
    found.flush(QUEUE)
    found.close()


def message() -> Message:  # type: ignore[type-arg]
    return Message(queue_name=QUEUE, actor_name="probe", args=(), kwargs={}, options={})


@pytest.fixture
def r(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url, decode_responses=True)


def test_a_queued_message_then_one_in_flight_keep_the_pipe_busy_until_acked(
    broker: RedisBroker, r: redis.Redis
) -> None:
    assert idle(r, [QUEUE])
    broker.enqueue(message())
    assert not idle(r, [QUEUE])
    consumer = broker.consume(QUEUE, prefetch=1, timeout=1000)
    fetched = next(consumer)
    assert fetched is not None
    assert unfinished(r, [QUEUE]) >= 1  # held by the consumer, not yet acked
    consumer.ack(fetched)
    assert idle(r, [QUEUE])
    consumer.close()


def test_a_delayed_message_keeps_the_pipe_busy(broker: RedisBroker, r: redis.Redis) -> None:
    broker.enqueue(message(), delay=60_000)
    assert not idle(r, [QUEUE])
    assert idle(r, ["another_queue"])
