"""The recovery sweep returns delayed messages a live worker lost from memory across a Redis reconnect.

Real Redis and Dramatiq's own consumer: a consumer fetches delayed messages (their ids enter its
ack set), then is abandoned without ack or requeue, as `ConsumerThread.run` drops its in-memory
delay queue on a connection error while the process (and its heartbeat) lives on.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import dramatiq
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker

from common import keys
from worker.runtime.recovery.overdue import requeue_overdue

pytestmark = pytest.mark.e2e
QUEUE = "stranded_test"


@pytest.fixture
def broker(redis_url: str) -> Iterator[RedisBroker]:
    # Dramatiq's stock consumer: ours would hand the abandoned ids back itself on its next
    # consume (worker/runtime/recovery/own_acks.py); the sweep is for every other way a live worker keeps them.
    broker = RedisBroker(client=redis.Redis.from_url(redis_url))  # type: ignore[no-untyped-call]
    yield broker
    broker.close()


def _fetch_all(broker: RedisBroker, queue: str) -> list[str]:
    consumer = broker.consume(queue, prefetch=10, timeout=100)
    found = []
    for _ in range(5):
        message = next(consumer)
        if message is not None:
            found.append(message.args[0])
    return found


def test_an_overdue_delayed_message_in_a_live_workers_ack_set_is_fetched_again(broker: RedisBroker) -> None:
    actor = dramatiq.actor(lambda event_id: None, broker=broker, actor_name="stranded", queue_name=QUEUE)
    broker.enqueue(actor.message("due"), delay=1)
    broker.enqueue(actor.message("later"), delay=3_600_000)
    assert sorted(_fetch_all(broker, f"{QUEUE}.DQ")) == ["due", "later"]  # both now in this broker's ack set

    assert requeue_overdue(broker.client, QUEUE, grace_s=60) == 0  # "due" is not overdue by 60 s yet
    assert _fetch_all(broker, f"{QUEUE}.DQ") == []

    assert requeue_overdue(broker.client, QUEUE, grace_s=60, now=time.time() + 120) == 1
    assert _fetch_all(broker, f"{QUEUE}.DQ") == ["due"]  # "later" is still legitimately held
    assert broker.client.scard(f"{keys.DRAMATIQ_NAMESPACE}:__acks__.{broker.broker_id}.{QUEUE}.DQ") == 2
