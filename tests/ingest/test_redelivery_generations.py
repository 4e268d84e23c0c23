"""A redelivery during a burst is deduped and keeps its generation, whichever queue it would go to. Real Valkey."""

from __future__ import annotations

import pytest
import redis

from common import keys
from common.messages import BULK_QUEUE, EVENTS_QUEUE
from ingest.enqueue import RedisEventQueue
from tests.ingest.test_enqueue import on, planned
from tests.ingest.tokens import claims

pytestmark = pytest.mark.integration


@pytest.fixture
def client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url, decode_responses=True)


# --- what held: a redelivery is deduped and counted once whichever queue it would go to ------------------------


def test_a_redelivery_during_a_burst_is_deduped_and_keeps_its_generation(redis_url: str, client: redis.Redis) -> None:
    """Kinde redelivers an event first queued fresh; by then a burst routes its customer's events to bulk.
    The seen key is set before the queue is chosen, so the redelivery queues nothing and counts nothing."""
    client.set(keys.customer_grants("customer_0195ac80"), planned("customer_0195ac80"))  # it has plans
    first = claims()

    async def deliver(queue: RedisEventQueue) -> list[bool]:
        return [await queue.enqueue_once(e, None, 1.0) for e in (first, claims(), claims(), first)]

    assert on(redis_url, deliver, burst_events=1) == [True, True, True, False]
    assert (client.llen(keys.queue_list(EVENTS_QUEUE)), client.llen(keys.queue_list(BULK_QUEUE))) == (1, 2)
    assert client.get(keys.event_generation(first["event_id"])) == "customer_0195ac80|1"
    assert client.get(keys.customer_generation("customer_0195ac80")) == "3"
