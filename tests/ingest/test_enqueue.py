"""The atomic dedupe+enqueue against a real Redis-compatible server, and the Dramatiq contract."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import dramatiq
import pytest
import redis
import redis.asyncio
from dramatiq.brokers.redis import RedisBroker

from common import keys
from common.entitlements.grants import Grants
from common.errors import RetryableError
from common.infra.embedded_redis import EmbeddedRedis
from common.messages import BULK_QUEUE, EVENTS_QUEUE, HANDLE_BULK_EVENT_ACTOR, HANDLE_EVENT_ACTOR
from ingest.enqueue import RedisEventQueue
from tests.ingest.tokens import claims
from tests.procs import free_port, wait_until

pytestmark = pytest.mark.integration  # Redis servers it starts and stops

T = TypeVar("T")
QUEUE_HASH, QUEUE_LIST = keys.queue_messages(EVENTS_QUEUE), keys.queue_list(EVENTS_QUEUE)


def on(url: str, use: Callable[[RedisEventQueue], Awaitable[T]], burst_events: int = 30) -> T:
    """Run `use(queue)` on a fresh event loop with a fresh client to `url`, closing it after."""

    async def main() -> T:
        client = redis.asyncio.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        queue = RedisEventQueue(client, dedupe_ttl_s=600, burst_events=burst_events)
        try:
            return await use(queue)
        finally:
            await queue.aclose()
            await client.aclose()

    return asyncio.run(main())


@pytest.fixture
def sync_redis(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(url=redis_url, decode_responses=True)
    yield client
    client.close()


def test_an_event_is_queued_once_and_then_reported_duplicate(redis_url: str, sync_redis: redis.Redis) -> None:
    event = claims()

    async def twice(queue: RedisEventQueue) -> list[bool]:
        return [await queue.enqueue_once(event, "wh_1", 1.5), await queue.enqueue_once(event, "wh_2", 2.5)]

    assert on(redis_url, twice) == [True, False]
    assert sync_redis.llen(QUEUE_LIST) == 1
    assert sync_redis.get(keys.seen_event(event["event_id"])) == "wh_1"
    assert 590 < sync_redis.ttl(keys.seen_event(event["event_id"])) <= 600


def test_a_billing_event_is_counted_for_its_customer_as_it_is_queued(redis_url: str, sync_redis: redis.Redis) -> None:
    """The worker's coalescer reads these generations back, so a pass covers every event ingested before it."""
    first, second, signup = claims(), claims(), claims("user.created", data={"user": {"id": "kp_1"}})

    async def queue_all(queue: RedisEventQueue) -> list[bool]:
        return [await queue.enqueue_once(e, None, 1.0) for e in (first, second, first, signup)]

    assert on(redis_url, queue_all) == [True, True, False, True]
    assert sync_redis.get(keys.event_generation(first["event_id"])) == "customer_0195ac80|1"
    assert sync_redis.get(keys.event_generation(second["event_id"])) == "customer_0195ac80|2"
    assert sync_redis.get(keys.customer_generation("customer_0195ac80")) == "2"  # the duplicate counted nothing
    assert sync_redis.exists(keys.event_generation(signup["event_id"])) == 0  # no customer: the worker assigns
    assert 590 < sync_redis.ttl(keys.event_generation(first["event_id"])) <= 600


def test_a_corrupt_generation_counter_fails_before_anything_is_written(redis_url: str, sync_redis: redis.Redis) -> None:
    event = claims()
    sync_redis.set(keys.customer_generation("customer_0195ac80"), "not a number")

    async def attempt(queue: RedisEventQueue) -> bool:
        return await queue.enqueue_once(event, "wh_1", 1.0)

    with pytest.raises(RetryableError):
        on(redis_url, attempt)
    assert sync_redis.exists(keys.seen_event(event["event_id"]), QUEUE_HASH, QUEUE_LIST) == 0


def test_the_message_has_dramatiqs_layout(redis_url: str, sync_redis: redis.Redis) -> None:
    event = claims()

    async def once(queue: RedisEventQueue) -> bool:
        return await queue.enqueue_once(event, "wh_1", 1.5)

    on(redis_url, once)
    [message_id] = sync_redis.lrange(QUEUE_LIST, 0, -1)
    message = json.loads(sync_redis.hget(QUEUE_HASH, message_id) or "")
    assert message["queue_name"] == EVENTS_QUEUE
    assert message["actor_name"] == HANDLE_EVENT_ACTOR
    assert message["args"] == [event, {"webhook_id": "wh_1", "received_at": 1.5}]
    assert message["options"]["redis_message_id"] == message_id


def test_past_the_burst_threshold_an_existing_customers_events_go_to_the_bulk_queue(
    redis_url: str, sync_redis: redis.Redis
) -> None:
    existing, first_plan = "customer_0195ac80", "customer_new"
    sync_redis.set(keys.customer_grants(existing), planned(existing))  # a pass read its plans: not its first
    trickle = [claims(), claims()]  # within the threshold of 2: fresh however known the customer
    burst, signup = claims(), claims(data={"customer_id": first_plan})
    user_event = claims("user.created", data={"user": {"id": "kp_1"}})

    async def queue_all(queue: RedisEventQueue) -> list[bool]:
        return [await queue.enqueue_once(e, None, 1.0) for e in (*trickle, burst, signup, user_event)]

    assert on(redis_url, queue_all, burst_events=2) == [True] * 5
    fresh = [json.loads(sync_redis.hget(QUEUE_HASH, i) or "") for i in sync_redis.lrange(QUEUE_LIST, 0, -1)]
    bulk_list, bulk_hash = keys.queue_list(BULK_QUEUE), keys.queue_messages(BULK_QUEUE)
    bulk = [json.loads(sync_redis.hget(bulk_hash, i) or "") for i in sync_redis.lrange(bulk_list, 0, -1)]
    assert [m["args"][0]["event_id"] for m in fresh] == [e["event_id"] for e in (*trickle, signup, user_event)]
    assert [m["args"][0] for m in bulk] == [burst]
    assert (bulk[0]["queue_name"], bulk[0]["actor_name"]) == (BULK_QUEUE, HANDLE_BULK_EVENT_ACTOR)
    assert {(m["queue_name"], m["actor_name"]) for m in fresh} == {(EVENTS_QUEUE, HANDLE_EVENT_ACTOR)}
    assert sync_redis.get(keys.event_generation(burst["event_id"])) == f"{existing}|3"  # counted as before


def planned(customer_id: str, *plans: str) -> str:
    """The grant record a customer's pass writes: `plans` as read from Kinde (none: a sign-up's pass)."""
    return Grants(customer_id, plans or ("plan_subscriber",), frozenset(), (), 1, 1.0).to_json()


def test_past_the_burst_threshold_a_sign_ups_first_plan_stays_fresh(redis_url: str, sync_redis: redis.Redis) -> None:
    signed_up = "customer_signed_up"
    # user.created's pass wrote its record before any plan: no plans, no roles, its one target
    sync_redis.set(keys.customer_grants(signed_up), Grants(signed_up, (), frozenset(), (), 1, 1.0).to_json())
    burst = [claims(), claims()]  # other customers' billing events fill the window
    first_plan = claims(data={"customer_id": signed_up})

    async def queue_all(queue: RedisEventQueue) -> list[bool]:
        return [await queue.enqueue_once(e, None, 1.0) for e in (*burst, first_plan)]

    assert on(redis_url, queue_all, burst_events=2) == [True] * 3
    fresh = [json.loads(sync_redis.hget(QUEUE_HASH, i) or "") for i in sync_redis.lrange(QUEUE_LIST, 0, -1)]
    # was: behind the bulk queue, as "a record exists" took the sign-up for an existing customer
    assert [m["args"][0]["event_id"] for m in fresh][-1] == first_plan["event_id"]
    assert sync_redis.llen(keys.queue_list(BULK_QUEUE)) == 0


def test_with_the_burst_threshold_at_zero_every_event_is_fresh(redis_url: str, sync_redis: redis.Redis) -> None:
    sync_redis.set(keys.customer_grants("customer_0195ac80"), planned("customer_0195ac80"))

    async def queue_all(queue: RedisEventQueue) -> list[bool]:
        return [await queue.enqueue_once(claims(), None, 1.0) for _ in range(3)]

    assert on(redis_url, queue_all, burst_events=0) == [True] * 3
    assert sync_redis.llen(QUEUE_LIST) == 3
    assert sync_redis.exists(keys.queue_list(BULK_QUEUE)) == 0


def test_a_failed_enqueue_leaves_no_seen_key_and_the_retry_is_queued(redis_url: str, sync_redis: redis.Redis) -> None:
    # Given the queue hash cannot be written (it holds a string), so the script fails mid-way if it wrote early
    event = claims()
    sync_redis.set(QUEUE_HASH, "not a hash")

    async def attempt(queue: RedisEventQueue) -> bool:
        return await queue.enqueue_once(event, "wh_1", 1.0)

    # When the first delivery fails
    with pytest.raises(RetryableError) as caught:
        on(redis_url, attempt)
    assert caught.value.reason == "redis_unavailable"
    # Then nothing was marked seen, so Kinde's retry is queued rather than answered "duplicate"
    assert sync_redis.exists(keys.seen_event(event["event_id"])) == 0
    sync_redis.delete(QUEUE_HASH)
    assert on(redis_url, attempt) is True
    assert sync_redis.llen(QUEUE_LIST) == 1


@pytest.fixture
def own_redis() -> Iterator[EmbeddedRedis]:
    """A server of this test's own, so it can be starved or stopped without touching anyone else's."""
    with EmbeddedRedis(port=free_port()) as server:
        yield server


def test_a_server_refusing_writes_leaves_nothing_half_written(own_redis: EmbeddedRedis) -> None:
    client = redis.Redis.from_url(own_redis.url, decode_responses=True)
    client.set("ballast", "x" * 200_000)
    client.config_set("maxmemory", "1")  # noeviction (common/infra/embedded_redis.py): every write is refused
    event = claims()

    async def attempt(queue: RedisEventQueue) -> bool:
        return await queue.enqueue_once(event, "wh_1", 1.0)

    with pytest.raises(RetryableError):
        on(own_redis.url, attempt)
    assert client.exists(keys.seen_event(event["event_id"]), QUEUE_HASH, QUEUE_LIST) == 0
    client.config_set("maxmemory", "0")
    assert on(own_redis.url, attempt) is True
    client.close()


def test_a_stopped_server_is_retryable_and_fails_fast(own_redis: EmbeddedRedis) -> None:
    url = own_redis.url
    own_redis.stop()

    async def attempt(queue: RedisEventQueue) -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(RetryableError):
            await queue.enqueue_once(claims(), None, 1.0)
        with pytest.raises(RetryableError):
            await queue.ping()
        return loop.time() - started

    assert on(url, attempt) < 2.5


def test_a_real_dramatiq_worker_consumes_what_the_ingest_wrote(redis_url: str) -> None:
    # Given a real RedisBroker and Worker with an actor named like the worker's, declared here (no worker import)
    broker = RedisBroker(url=redis_url)
    received: list[tuple[dict[str, Any], dict[str, Any]]] = []
    done = threading.Event()

    def handle_event(event: dict[str, Any], meta: dict[str, Any]) -> None:
        received.append((event, meta))
        done.set()

    dramatiq.actor(handle_event, actor_name=HANDLE_EVENT_ACTOR, queue_name=EVENTS_QUEUE, broker=broker)
    worker = dramatiq.Worker(broker, worker_timeout=100, worker_threads=1)
    worker.start()
    event = claims()

    async def once(queue: RedisEventQueue) -> bool:
        return await queue.enqueue_once(event, "wh_contract", 42.0)

    try:
        # When the ingest enqueues natively
        assert on(redis_url, once) is True
        # Then the worker runs the actor with the claims and the delivery metadata
        wait_until(done.is_set, timeout=10, what="the dramatiq worker to run handle_event")
    finally:
        worker.stop()
        broker.close()
    assert received == [(event, {"webhook_id": "wh_contract", "received_at": 42.0})]
