"""Dramatiq middleware: dead-letter recording, and per-message log context and metrics.

`DeadLetters` is registered *before* Retries, so its `after_process_message` runs after Retries
has decided (after-hooks run in reverse order): when the message has failed (a PermanentError,
exhausted retries, or an unexpected error past its few tries) it writes the one durable record with
the reason and error worker/runtime/retry_policy.py chose. Messages failed by AgeLimit arrive through
`after_skip_message` and are recorded as `too_old`.

A record the store cannot write yet (Redis unreachable) is *owed* by its message, as a retry copy
is in worker/runtime/durable_retries.py: Dramatiq swallows errors of after-hooks and would nack the message
into its `.XQ` with no record of ours. `before_nack` writes it first, and while the store still
fails it raises what Dramatiq treats as a lost connection, so the nack is retried every 5 s and the
message stays in the ack set (returned by maintenance if this worker dies) until the record exists.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import dramatiq
import structlog
from dramatiq.errors import ConnectionClosed
from dramatiq.middleware import MiddlewareError

from common.customers.history import History, entry
from common.errors import ForbiddenError, RetryableError
from common.infra.deadletters import TOO_OLD, UNEXPECTED, DeadLetter, DeadLetterStore
from common.messages import CONVERGE_CUSTOMER_ACTOR, REBUILD_INDEX_ACTOR
from common.webhooks.events import customer_id_of
from worker.runtime import metrics
from worker.runtime.durable_retries import GIVEN_UP
from worker.runtime.retry_policy import FAILURES, describe, summarise

log = structlog.get_logger(__name__)


def claims_of(message: Any) -> dict[str, Any]:
    """The event claims a message carries; other actors' messages get a synthetic record: their actor as
    `type` and their own `args` (a replay sends them again as they were), naming a customer only for a
    converge pass and the chain's holder for an index-rebuild chunk (which is no customer's)."""
    args = list(message.args or [])
    if args and isinstance(args[0], dict):
        return dict(args[0])
    first = args[0] if args else None
    named = {CONVERGE_CUSTOMER_ACTOR: "customer_id", REBUILD_INDEX_ACTOR: "rebuild"}.get(message.actor_name)
    return {"type": message.actor_name, "args": args, **({named: first} if named else {})}


def event_id_for(message: Any, claims: dict[str, Any]) -> str:
    return str(claims.get("event_id") or f"message_{message.message_id}")


class DeadLetterOwed(MiddlewareError, ConnectionClosed):
    """Raised from `before_nack`: `emit_before` re-raises only MiddlewareError, and the worker
    retries post-processing (the nack) only on a BrokerConnectionError, hence both bases."""


class DeadLetters(dramatiq.Middleware):
    def __init__(
        self, store: Callable[[], DeadLetterStore], timeline: Callable[[], History | None] = lambda: None
    ) -> None:
        self._store = store
        self._timeline = timeline
        self._owed: dict[str, DeadLetter] = {}
        self._lock = threading.Lock()

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        if message.failed:
            reason, last_error = message.options.pop(GIVEN_UP, None) or _unforeseen(exception)
            self._record(message, reason, last_error, _refused(exception))

    def after_skip_message(self, broker: Any, message: Any) -> None:
        if message.failed:
            self._record(message, TOO_OLD, "message older than the actor's age limit")

    def before_nack(self, broker: Any, message: Any) -> None:
        with self._lock:
            record = self._owed.pop(_key(message), None)
        if record is not None and not self._written(message, record):
            raise DeadLetterOwed(f"dead letter of {message.message_id} not written yet")  # type: ignore[no-untyped-call]

    def _record(
        self, message: Any, reason: str, last_error: str, refused: tuple[str | None, str | None] = (None, None)
    ) -> None:
        claims, now = claims_of(message), time.time()
        attempts = int(message.options.get(FAILURES, 0)) + 1
        record = DeadLetter(
            event_id_for(message, claims), claims, reason, last_error, attempts, now, now,
            customer_id_of(claims), str(claims.get("type") or message.actor_name),
            endpoint=refused[0], scope=refused[1],
        )  # fmt: skip
        self._written(message, record)

    def _written(self, message: Any, record: DeadLetter) -> bool:
        """Write the record; on a store outage, owe it to the message's nack instead."""
        try:
            self._store().put(record)
        except RetryableError as exc:
            with self._lock:
                self._owed[_key(message)] = record
            log.warning("dead_letter_write_deferred", reason=record.reason, error=exc.reason)
            return False
        metrics.DEAD_LETTERS.labels(record.reason).inc()
        log.warning("event_dead_lettered", reason=record.reason, attempts=record.attempts)
        self._note(record)
        return True

    def _note(self, record: DeadLetter) -> None:
        """The customer's timeline shows it (common/customers/history.py); ids and reason only, never the claims."""
        timeline = self._timeline() if record.customer_id else None
        if timeline is not None and record.customer_id:
            timeline.add(record.customer_id, entry("dead_letter", reason=record.reason, event_id=record.id,
                                                   type=record.event_type, attempts=record.attempts,
                                                   scope=record.scope))  # fmt: skip


def _key(message: Any) -> str:
    return str(message.options.get("redis_message_id") or message.message_id)


def _refused(exception: BaseException | None) -> tuple[str | None, str | None]:
    """(endpoint, scope) of a call Kinde refused for a missing scope, kept so the probe can retry it."""
    if isinstance(exception, ForbiddenError):
        return exception.endpoint, exception.scope
    return None, None


def _unforeseen(exception: BaseException | None) -> tuple[str, str]:
    """A message failed by something other than the retry policy (no middleware of ours does)."""
    return UNEXPECTED, summarise(exception) if exception is not None else "failed"


def _describe(exception: BaseException | None) -> str:
    return describe(exception) if exception is not None else "failed"


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
        metrics.QUEUE_LAG.labels(message.queue_name).observe(max(0.0, time.time() - float(received)))
