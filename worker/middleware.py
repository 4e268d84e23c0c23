"""Dramatiq middleware: dead-letter recording, and per-message log context and metrics.

`DeadLetters` is registered *before* Retries, so its `after_process_message` runs after Retries
has decided (after-hooks run in reverse order, dramatiq-stack.md §1.5): when the message has
failed (a `throws=` PermanentError, exhausted retries, or an unexpected error past its budget) it
writes the one durable record with the reason. Messages failed by AgeLimit arrive through
`after_skip_message` and are recorded as `too_old`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import dramatiq
import structlog

from common.deadletters import RETRIES_EXHAUSTED, TOO_OLD, DeadLetter, DeadLetterStore
from common.errors import ServiceError
from common.events import customer_id_of
from worker import metrics
from worker.retrying import FAILURES

log = structlog.get_logger(__name__)


def claims_of(message: Any) -> dict[str, Any]:
    """The event claims a message carries (converge_customer messages get a synthetic record)."""
    args = list(message.args or [])
    if args and isinstance(args[0], dict):
        return dict(args[0])
    return {"type": message.actor_name, "customer_id": args[0] if args else None, "args": args}


def event_id_for(message: Any, claims: dict[str, Any]) -> str:
    return str(claims.get("event_id") or f"message_{message.message_id}")


class DeadLetters(dramatiq.Middleware):
    def __init__(self, store: Callable[[], DeadLetterStore]) -> None:
        self._store = store

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        if message.failed:
            reason = exception.reason if isinstance(exception, ServiceError) else RETRIES_EXHAUSTED
            self._record(message, reason, _describe(exception))

    def after_skip_message(self, broker: Any, message: Any) -> None:
        if message.failed:
            self._record(message, TOO_OLD, "message older than the actor's age limit")

    def _record(self, message: Any, reason: str, last_error: str) -> None:
        claims, now = claims_of(message), time.time()
        attempts = int(message.options.get(FAILURES, 0)) + 1
        record = DeadLetter(
            event_id_for(message, claims), claims, reason, last_error, attempts, now, now,
            customer_id_of(claims), str(claims.get("type") or message.actor_name),
        )  # fmt: skip
        self._store().put(record)
        metrics.DEAD_LETTERS.labels(reason).inc()
        log.warning("event_dead_lettered", reason=reason, attempts=attempts)


def _describe(exception: BaseException | None) -> str:
    if exception is None:
        return "failed"
    return f"{type(exception).__name__}: {exception}"[:1000]


class Observe(dramatiq.Middleware):
    """Bind event_id/customer_id for every log line of a message, clear them after; count outcomes."""

    def before_process_message(self, broker: Any, message: Any) -> None:
        structlog.contextvars.clear_contextvars()
        claims = claims_of(message)
        structlog.contextvars.bind_contextvars(
            event_id=event_id_for(message, claims),
            event_type=claims.get("type"),
            customer_id=customer_id_of(claims),
            message_id=message.message_id,
            attempt=int(message.options.get("retries", 0)) + 1,
        )
        _observe_queue_lag(message)

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        if exception is not None:  # successes are counted by the actor, which knows the outcome
            kind = metrics.family(str(claims_of(message).get("type") or "converge"))
            metrics.EVENTS.labels(kind, "dead_lettered" if message.failed else "retried").inc()
        if exception is not None and not message.failed:
            log.info("event_retried", error=_describe(exception)[:300])
        structlog.contextvars.clear_contextvars()

    def after_skip_message(self, broker: Any, message: Any) -> None:
        structlog.contextvars.clear_contextvars()


def _observe_queue_lag(message: Any) -> None:
    args = list(message.args or [])
    meta = args[1] if len(args) > 1 and isinstance(args[1], dict) else {}
    received = meta.get("received_at")
    if isinstance(received, int | float) and not message.options.get("retries"):
        metrics.QUEUE_LAG.observe(max(0.0, time.time() - float(received)))
