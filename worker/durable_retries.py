"""Retries whose delayed copy cannot be lost to a broker outage.

Dramatiq's `Retries.after_process_message` enqueues the retry copy with a plain `broker.enqueue`.
When Redis is down at that moment the enqueue raises, `Broker.emit_after` logs it as an
"Unexpected failure" and swallows it, and the worker then acks the original once Redis is back
(dramatiq retries a failed ack every 5 s): the event is gone, neither retried nor dead-lettered.
The chaos suite (`python -m chaos redis`) lost events exactly this way (docs/reliability.md).

Here a retry copy that could not be enqueued is *owed* by its original message, and the ack of
that original first pays it: `before_ack` enqueues the copy, and while Redis still fails it raises
an error that Dramatiq treats as a lost connection, so the ack (with this step) is retried every
5 s and the original stays in the ack set until its retry is durably queued. Waiting there, not in
`after_process_message`, keeps the wait outside the actor's TimeLimit. A timed-out enqueue may
have happened anyway: paying again then queues a duplicate, which the coalescer makes harmless.
"""

from __future__ import annotations

import threading
from typing import Any

import redis
import structlog
from dramatiq.errors import ConnectionClosed
from dramatiq.middleware import MiddlewareError, Retries

log = structlog.get_logger(__name__)
Owed = tuple[Any, int | None]  # (the message Retries wanted queued, its delay ms)


class RetryOwed(MiddlewareError, ConnectionClosed):
    """Raised from `before_ack`: `emit_before` re-raises only MiddlewareError, and the consumer
    retries post-processing (the ack) only on a BrokerConnectionError, hence both bases."""


class DurableRetries(Retries):
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._owed: dict[str, Owed] = {}
        self._lock = threading.Lock()

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        deferring = _Deferring(broker, self, message)
        super().after_process_message(deferring, message, result=result, exception=exception)  # type: ignore[no-untyped-call]

    def before_ack(self, broker: Any, message: Any) -> None:
        owed = self.take(message)
        if owed is not None:
            self.pay(broker, message, owed)

    def owe(self, original: Any, owed: Owed) -> None:
        with self._lock:
            self._owed[_key(original)] = owed

    def take(self, original: Any) -> Owed | None:
        with self._lock:
            return self._owed.pop(_key(original), None)

    def pay(self, broker: Any, original: Any, owed: Owed) -> None:
        try:
            broker.enqueue(owed[0], delay=owed[1])
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self.owe(original, owed)
            log.warning("retry_enqueue_deferred", message_id=original.message_id, error=type(exc).__name__)
            reason = f"retry of {original.message_id} not queued yet: {type(exc).__name__}"
            raise RetryOwed(reason) from None  # type: ignore[no-untyped-call]
        log.info("retry_enqueue_paid", message_id=original.message_id)


class _Deferring:
    """The broker as `Retries` sees it: an enqueue that Redis refuses is owed, not lost."""

    def __init__(self, broker: Any, retries: DurableRetries, original: Any) -> None:
        self._broker, self._retries, self._original = broker, retries, original

    def __getattr__(self, name: str) -> Any:
        return getattr(self._broker, name)

    def enqueue(self, message: Any, *, delay: int | None = None) -> Any:
        try:
            return self._broker.enqueue(message, delay=delay)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self._retries.owe(self._original, (message, delay))
            log.warning("retry_enqueue_deferred", message_id=message.message_id, error=type(exc).__name__)
            return message


def _key(message: Any) -> str:
    return str(message.options.get("redis_message_id") or message.message_id)
