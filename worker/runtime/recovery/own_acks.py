"""Ids stuck in this worker's *own* ack set, put back whenever a consumer (re)starts.

Part 2 of recovery (worker/runtime/recovery/__init__.py), called by `WorkerRedisBroker.consume`.
Dramatiq's fetch moves ids into `__acks__.{broker_id}.{queue}` inside Redis and returns them. If the
reply dies with the connection, the ids sit there held by nobody in this process; the consumer's
prefetched cache and its in-memory delay queue, which `ConsumerThread` drops on a connection error,
are left there the same way. Maintenance returns an ack set only once its worker's heartbeat stops,
so while this worker lives those events would wait, for days if it is never restarted
(docs/stack-notes.md, Crash recovery; the gap `python -m chaos redis` left open in docs/reliability.md).

`ConsumerThread` calls `broker.consume` again after every connection error, before it fetches. At
that moment nothing of this queue is in transit, so the ack set must hold exactly what this process
still has: messages handed to worker threads and not yet acked, and those in this thread's delay
queue. Everything else is requeued. An id acked meanwhile is skipped by the requeue script itself.
An id whose body Dramatiq cannot decode is dead-lettered instead: its fetch is what restarted the
consumer, and requeueing it would restart the consumer again each time it comes round, for good.
It goes to our store (reason `undecodable`, worker/runtime/undecodable.py), never to Dramatiq's 7-day `.XQ`,
and leaves the ack set only once that record is written: a failed write is a lost connection, so
the consumer restarts in a second and this runs again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import redis
import structlog
from dramatiq import ConsumerThread, Message
from dramatiq.brokers.redis import _RedisConsumer
from dramatiq.common import compute_backoff
from dramatiq.errors import ConnectionClosed, DecodeError

from common import keys
from common.errors import RetryableError
from common.infra.deadletters import DeadLetterStore
from worker.runtime.shared_prefetch import SharedPrefetch
from worker.runtime.undecodable import undecodable_letter

FULL_POLL_S = 0.02  # how often a consumer whose prefetch is full looks for its messages' acks

log = structlog.get_logger(__name__)


class Outstanding:
    """Redis ids of one queue this process's consumers handed out and have not acked or nacked."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._delayed: dict[str, bool] = {}  # id -> went to the consumer thread's delay queue

    def took(self, message: Any) -> None:
        with self._lock:
            self._delayed[_redis_id(message)] = message.options.get("eta") is not None

    def done(self, message: Any) -> None:
        with self._lock:
            self._delayed.pop(_redis_id(message), None)

    def held(self, in_delay_queue: set[str]) -> set[str]:
        """Ids still in this process; delayed ones count only while the delay queue still has them.

        A delayed id no longer in the delay queue is gone from this process (moved and acked, put back
        by `ConsumerThread.close`, or dropped on a connection error), so it is forgotten here: put back,
        it may be fetched by another worker and would otherwise stay in this dict for good.
        """
        with self._lock:
            gone = [i for i, delayed in self._delayed.items() if delayed and i not in in_delay_queue]
            for message_id in gone:
                del self._delayed[message_id]
            return set(self._delayed)

    def forget(self, ids: set[str]) -> None:
        with self._lock:
            for message_id in ids:
                self._delayed.pop(message_id, None)


class TrackingConsumer(_RedisConsumer):
    """Dramatiq's Redis consumer, recording what it hands out until it is acked or nacked."""

    def __init__(
        self,
        broker: Any,
        queue_name: str,
        prefetch: int,
        timeout: int,
        outstanding: Outstanding,
        share: SharedPrefetch | None = None,
    ) -> None:
        super().__init__(broker, queue_name, prefetch, timeout)  # type: ignore[no-untyped-call]
        self.outstanding = outstanding
        self.share = share
        if share is not None:
            share.join(queue_name, self, prefetch)

    def __next__(self) -> Any:
        if self.share is not None and not self.message_cache and not self._fetch_shared(self.share):
            return None
        if not self.message_cache and self.outstanding_message_count >= self.prefetch:
            # Full: nothing may be fetched until a running message is acked, which the consumer thread
            # does as soon as this returns. Dramatiq would count this as an empty poll and back off up
            # to its idle timeout (1 s), idling a worker thread that long after each message once the
            # prefetch is small (a bulk queue's: worker/runtime/broker.py `bulk_prefetch`).
            time.sleep(FULL_POLL_S)
            return None
        message = super().__next__()  # type: ignore[no-untyped-call]
        if message is not None:
            self.outstanding.took(message)
        return message

    def _fetch_shared(self, share: SharedPrefetch) -> bool:
        """Fill the cache within the shared budget; False (after a pause) if nothing was fetched."""
        with share.lock:  # one Redis round trip, never a sleep, under the lock
            wanted = min(self.prefetch - self.outstanding_message_count, share.room())
            if wanted > 0:
                with _fetch_errors():
                    self.message_cache = self.broker.do_fetch(self.queue_name, wanted)
        if self.message_cache:
            return True
        if wanted > 0:  # the queue is empty: Dramatiq's own back-off, up to its idle timeout
            self.misses, backoff_ms = compute_backoff(self.misses, max_backoff=self.timeout)
            time.sleep(backoff_ms / 1000)
        else:
            time.sleep(FULL_POLL_S)
        return False

    def ack(self, message: Any) -> None:
        with _as_lost_connection(self.broker):  # a failed ack raises, is retried by Dramatiq, stays outstanding
            super().ack(message)  # type: ignore[no-untyped-call]
        self.outstanding.done(message)

    def nack(self, message: Any) -> None:
        with _as_lost_connection(self.broker):
            super().nack(message)  # type: ignore[no-untyped-call]
        self.outstanding.done(message)


@contextmanager
def _fetch_errors() -> Iterator[None]:
    """As Dramatiq's own fetch: a lost connection restarts the consumer."""
    try:
        yield
    except redis.ConnectionError as exc:
        raise ConnectionClosed(exc) from None  # type: ignore[no-untyped-call]


@contextmanager
def _as_lost_connection(broker: Any) -> Iterator[None]:
    """Dramatiq retries an ack or nack every 5 s only on a lost connection (`post_process_message`);
    on anything else it logs and gives up, leaving the id in the ack set while this process counts it
    as held: never requeued while the worker lives. Two such errors are really lost connections:
    redis-py's TimeoutError (a reconnect that timed out, a reply that never came), which is no subclass
    of its ConnectionError, and READONLY, a server that became a replica in a failover, where the pool
    is dropped so the retry reconnects (and re-resolves the name) to the new primary. Both commands are
    idempotent."""
    try:
        yield
    except redis.TimeoutError as exc:
        raise ConnectionClosed(exc) from None  # type: ignore[no-untyped-call]
    except redis.ReadOnlyError as exc:
        broker.client.connection_pool.disconnect()
        raise ConnectionClosed(exc) from None  # type: ignore[no-untyped-call]


DeadLetters = Callable[[], DeadLetterStore]


def reclaim(broker: Any, queue_name: str, outstanding: Outstanding, dead_letters: DeadLetters) -> int:
    """Requeue every id in this broker's ack set for `queue_name` that the process no longer holds."""
    members = broker.client.smembers(keys.ack_set(broker.broker_id, queue_name))
    stranded = sorted({_text(m) for m in members} - outstanding.held(_delay_queue_ids()))
    if not stranded:
        return 0
    bodies = broker.client.hmget(keys.queue_messages(queue_name), stranded)
    poison = {i: body for i, body in zip(stranded, bodies, strict=True) if body is not None and not _usable(body)}
    if requeue := [i for i in stranded if i not in poison]:
        broker.do_requeue(queue_name, *requeue)
        log.warning("stranded_messages_reclaimed", queue=queue_name, count=len(requeue))
    outstanding.forget(set(stranded))
    for message_id, body in poison.items():  # after the requeue: a failed write must not hold the rest back
        _dead_letter(broker, queue_name, message_id, body, dead_letters)
    return len(stranded)


def _dead_letter(broker: Any, queue_name: str, message_id: str, body: bytes, dead_letters: DeadLetters) -> None:
    """Record the body in our store, then drop the message; a failed write leaves it in the ack set."""
    try:
        dead_letters().put(undecodable_letter(queue_name, message_id, body))
    except RetryableError as exc:
        log.warning("undecodable_message_kept", queue=queue_name, redis_message_id=message_id, error=exc.reason)
        raise ConnectionClosed(exc) from None  # type: ignore[no-untyped-call]
    broker.do_ack(queue_name, message_id)
    log.error("undecodable_message_dead_lettered", queue=queue_name, redis_message_id=message_id)


def _delay_queue_ids() -> set[str]:
    thread = threading.current_thread()
    if not isinstance(thread, ConsumerThread):
        return set()
    return {_redis_id(item.message) for item in list(thread.delay_queue.queue)}


def _usable(body: bytes) -> bool:
    """Whether the consumer can hand this body out (decode it, and ack it by its Redis id)."""
    try:
        return "redis_message_id" in Message.decode(body).options
    except DecodeError:
        return False


def _redis_id(message: Any) -> str:
    return str(message.options["redis_message_id"])


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw
