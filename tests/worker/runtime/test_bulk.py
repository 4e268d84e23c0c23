"""Bulk without starvation, on real Redis: a fresh message runs before a queued bulk backlog, and the
shared Kinde limiter keeps a reserve of each window for fresh calls while bulk calls take the rest.
(Throughput under load is measured by `make bench-backlog`, docs/benchmarks.md.)"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import dramatiq
import pytest
import redis
from dramatiq import Worker
from dramatiq.brokers.redis import RedisBroker

from common.errors import RateLimitedError
from common.infra.deadletters import RedisDeadLetterStore
from common.messages import BULK_PRIORITY, BULK_QUEUE, EVENTS_QUEUE
from common.settings import Settings
from launch.processes import wait_until
from worker.entrypoints import bootstrap
from worker.kinde import ratelimit
from worker.kinde.ratelimit import RedisKindeGate, bulk_calls, reserve_of
from worker.runtime.broker import build_broker, bulk_prefetch

pytestmark = pytest.mark.e2e
BACKLOG = 12
THREADS = 2


@pytest.fixture
def broker(redis_url: str) -> Iterator[RedisBroker]:
    bootstrap.use_deps(None, RedisDeadLetterStore(redis.Redis.from_url(redis_url, decode_responses=True)))
    broker = build_broker(Settings.from_env({"REDIS_URL": redis_url}))
    yield broker
    broker.close()
    bootstrap.use_deps(None, None)


def test_a_fresh_event_runs_before_a_queued_bulk_backlog(broker: RedisBroker) -> None:
    started: list[str] = []
    release = threading.Event()  # bulk passes run until the fresh one has: a backlog that stays queued

    def bulk_pass(n: int) -> None:
        started.append(f"bulk-{n}")
        release.wait(10)

    def fresh_event() -> None:
        started.append("fresh")
        release.set()

    bulk = dramatiq.actor(bulk_pass, broker=broker, actor_name="bulk_pass", queue_name=BULK_QUEUE,
                          priority=BULK_PRIORITY, max_retries=0)  # fmt: skip
    fresh = dramatiq.actor(fresh_event, broker=broker, actor_name="fresh_event", queue_name=EVENTS_QUEUE, max_retries=0)
    for n in range(BACKLOG):
        bulk.send(n)
    fresh.send()  # queued behind the whole backlog, as a sign-up during a migration
    worker = Worker(broker, worker_threads=THREADS, worker_timeout=100)
    worker.start()
    try:
        wait_until(lambda: "fresh" in started, timeout=30, what="the fresh event ran")
        wait_until(lambda: len(started) == BACKLOG + 1, timeout=60, what="the backlog drained")
    finally:
        worker.stop(timeout=10_000)
    # At most the bulk passes a thread took before the fresh one was fetched: never a bulk pass
    # fetched into the worker's memory ahead of it, however many threads are free.
    assert started.index("fresh") <= bulk_prefetch(2 * THREADS)
    assert sorted(started) == sorted(["fresh", *(f"bulk-{n}" for n in range(BACKLOG))])


def test_a_bulk_queue_prefetches_fewer_than_the_threads_so_a_thread_stays_for_fresh_work(broker: RedisBroker) -> None:
    threads = 8
    assert broker.consume(BULK_QUEUE, prefetch=2 * threads).prefetch == threads - 1
    assert broker.consume(EVENTS_QUEUE, prefetch=2 * threads).prefetch == 2 * threads


WINDOW_MS = 1000  # long windows so each thread's turn lands in the window it was taken in on a slow box
RATE = 10.0  # slots per window: 10


def test_bulk_calls_take_the_whole_rate_until_a_fresh_call_waits_then_leave_it_a_reserve(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ratelimit, "BUCKET_MS", WINDOW_MS)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    limit, bucket_ms = ratelimit.bucket_shape(RATE)
    assert bucket_ms == WINDOW_MS
    taken: list[tuple[int, str]] = []  # (window, class) of every slot taken
    stop = threading.Event()

    def caller(kind: str) -> None:
        gate = RedisKindeGate(client, RATE)
        while not stop.is_set():
            try:
                if kind == "bulk":
                    with bulk_calls():
                        gate.wait_turn()
                else:
                    gate.wait_turn()
            except RateLimitedError:
                continue
            taken.append((int(time.time() * 1000) // WINDOW_MS, kind))

    bulk_threads = [threading.Thread(target=caller, args=("bulk",)) for _ in range(6)]
    fresh_thread = threading.Thread(target=caller, args=("fresh",))
    first = _next_window()
    for thread in bulk_threads:
        thread.start()
    fresh_from = _next_window(after=first + 2)  # two whole windows of bulk calls alone
    fresh_thread.start()
    end = _next_window(after=fresh_from + 3)
    stop.set()
    for thread in [*bulk_threads, fresh_thread]:
        thread.join(timeout=10)

    def count(window: int, kind: str) -> int:
        return sum(1 for w, k in taken if w == window and k == kind)

    for window in (first, first + 1):  # nothing fresh waits: bulk takes every slot
        assert count(window, "bulk") == limit, (window, taken)
    for window in range(fresh_from + 1, end):  # a fresh call always waits: the reserve is its
        assert count(window, "fresh") >= reserve_of(limit), (window, taken)
        assert count(window, "bulk") <= limit - reserve_of(limit), (window, taken)
        assert count(window, "bulk") + count(window, "fresh") <= limit


def _next_window(after: int = 0) -> int:
    """Sleep into the start of the next whole window (or of window `after`); return its number."""
    now_ms = time.time() * 1000
    window = max(after, int(now_ms) // WINDOW_MS + 1)
    time.sleep((window * WINDOW_MS - now_ms) / 1000 + 0.01)
    return window
