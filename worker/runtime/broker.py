"""Build the worker's RedisBroker: `dramatiq worker.runtime.broker:setup worker.runtime.actors` calls `setup()`.

The Dramatiq CLI calls `setup` in the main process and again in every worker process it starts,
before importing `worker.runtime.actors`, so the actors bind to this broker and never to a default one.
Nothing here touches the network: redis-py connects on first command.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import dramatiq
import redis
from dramatiq import ConsumerThread
from dramatiq.brokers.redis import RedisBroker
from dramatiq.errors import ConnectionClosed
from dramatiq.middleware import CurrentMessage, Retries, default_middleware

from common.infra.connections import redis_client
from common.infra.deadletters import DeadLetterStore
from common.infra.logs import configure_logging
from common.messages import BULK_QUEUES
from common.settings import Settings
from worker.entrypoints import bootstrap
from worker.entrypoints.clients import build_redis
from worker.runtime.durable_enqueue import replicated_enqueue, wait_ms_for
from worker.runtime.durable_retries import DurableRetries
from worker.runtime.heartbeat import Heartbeats
from worker.runtime.middleware import DeadLetters, Observe
from worker.runtime.recovery import Outstanding, TrackingConsumer, reclaim
from worker.runtime.shared_prefetch import SharedPrefetch
from worker.runtime.traced_messages import TracedMessages

# Generous socket timeout: a timed-out ack/fetch strands messages (docs/stack-notes.md, redis-py defaults).
BROKER_SOCKET_TIMEOUT_S = 10.0
BROKER_CONNECT_TIMEOUT_S = 5.0
BROKER_WAIT_MS = wait_ms_for(BROKER_SOCKET_TIMEOUT_S)  # an enqueue's WAIT under min_replicas: a reply, not a timeout


class WorkerRedisBroker(RedisBroker):
    """A RedisBroker whose consumer threads survive Redis going away.

    A consumer thread's enqueue is its delay-queue move, and redis-py raises it untranslated: Dramatiq
    then takes its "unexpected error" path, whose cleanup requeues the in-memory delay queue, which
    raises again while Redis is down and kills the thread for good (no retry or settling event of
    that process ever ran again: `python -m chaos redis`, docs/reliability.md). As a lost connection
    instead, the consumer restarts, and the delayed ids it held come back as below.
    Other callers (actors, on-call commands) keep redis-py's errors, which they translate themselves.

    Every consumer (re)start first requeues what this process's own ack set holds but the process
    does not: what a lost fetch reply or a dropped delay queue left behind (worker/runtime/recovery/).

    With `min_replicas` (a Sentinel deployment) every enqueue returns only once that many replicas
    hold the message, else raises a lost connection (worker/runtime/durable_enqueue.py), so no caller acks
    an original whose replacement a failover could still lose.
    """

    def __init__(
        self,
        *,
        dead_letters: Callable[[], DeadLetterStore],
        min_replicas: int = 0,
        wait_ms: int = BROKER_WAIT_MS,
        **options: Any,
    ) -> None:
        super().__init__(**options)  # type: ignore[no-untyped-call]
        if wait_ms <= 0:  # `WAIT n 0` would block forever
            raise ValueError(f"wait_ms must be positive, got {wait_ms}")
        self._min_replicas = (
            min_replicas  # > 0: every enqueue waits for that many replicas (worker/runtime/durable_enqueue.py)
        )
        self._wait_ms = wait_ms
        self._outstanding: dict[str, Outstanding] = {}
        self._dead_letters = dead_letters
        self._bulk_share = SharedPrefetch()  # every bulk queue's consumer fetches from this one budget

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> Any:
        share = self._bulk_share if queue_name in BULK_QUEUES else None
        if share is not None:
            prefetch = bulk_prefetch(prefetch)
        outstanding = self._outstanding.setdefault(queue_name, Outstanding())
        with _as_lost_connection():  # Redis still down: ConsumerThread retries the restart in 1 s
            reclaim(self, queue_name, outstanding, self._dead_letters)
        return TrackingConsumer(self, queue_name, prefetch, timeout, outstanding, share)

    def enqueue(self, message: Any, *, delay: int | None = None) -> Any:
        if not isinstance(threading.current_thread(), ConsumerThread):
            return super().enqueue(message, delay=delay)
        with _as_lost_connection():
            return super().enqueue(message, delay=delay)

    def do_enqueue(self, queue_name: str, redis_message_id: str, data: bytes) -> Any:
        if not self._min_replicas:
            return self._dispatch("enqueue")(queue_name, redis_message_id, data)  # type: ignore[no-untyped-call]
        return replicated_enqueue(
            self, queue_name, redis_message_id, data, min_replicas=self._min_replicas, wait_ms=self._wait_ms
        )

    def do_requeue(self, queue_name: str, *message_ids: str) -> Any:
        with _as_lost_connection():  # only consumers requeue; their cleanup tolerates a lost connection
            return self._dispatch("requeue")(queue_name, *message_ids)  # type: ignore[no-untyped-call]


def bulk_prefetch(prefetch: int) -> int:
    """A bulk queue's prefetch: Dramatiq's default is 2 x threads per queue, so a bulk consumer would
    hold a pile of fetched passes that a fresh event arriving later queues behind for every thread
    busy. At threads - 1 (counting those running), shared by every bulk queue (worker/runtime/shared_prefetch.py),
    bulk work never holds every thread of a process, and nothing bulk waits fetched in memory while a
    fresh event could run (docs/deploy.md)."""
    return max(1, prefetch // 2 - 1)


@contextmanager
def _as_lost_connection() -> Iterator[None]:
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise ConnectionClosed(exc) from None  # type: ignore[no-untyped-call]


def build_broker(settings: Settings) -> RedisBroker:
    client = redis_client(  # bytes, not decoded: Dramatiq decodes its own messages
        settings, timeout_s=BROKER_SOCKET_TIMEOUT_S, connect_timeout_s=BROKER_CONNECT_TIMEOUT_S, decode=False
    )
    # heartbeat_timeout bounds crash recovery together with the sweep (worker/runtime/recovery/bound.py)
    # Dramatiq's defaults, with Retries replaced by the one that applies worker/runtime/retry_policy.py and
    # whose retry copy survives a Redis outage
    retries = DurableRetries(max_retries=settings.max_retries, max_backoff=settings.max_backoff_ms)
    middleware = [m() for m in default_middleware if m is not Retries] + [retries]
    broker = WorkerRedisBroker(
        client=client,
        heartbeat_timeout=settings.heartbeat_timeout_s * 1000,
        middleware=middleware,
        dead_letters=bootstrap.dead_letters,
        min_replicas=settings.redis_min_replicas,
    )
    broker.add_middleware(CurrentMessage())
    broker.add_middleware(DeadLetters(bootstrap.dead_letters, bootstrap.timeline), before=Retries)
    broker.add_middleware(Observe())
    broker.add_middleware(Heartbeats(settings, functools.partial(build_redis, settings, 5.0)))
    broker.add_middleware(TracedMessages(settings))
    return broker


def setup() -> RedisBroker:
    settings = Settings.from_env().require("REDIS_URL")
    configure_logging(settings.log_level)
    broker = build_broker(settings)
    dramatiq.set_broker(broker)
    return broker
