"""The worker's one Retries middleware: every failed message gets `retry_policy.decide`'s answer.

It replaces Dramatiq's `Retries` (and with it `retry_when` and Dramatiq's own `retries` count as a
budget; `throws` is not consulted here, see `actor_options`): a retry goes back to the broker as a
delayed copy carrying the message's `FAILURES` counter; a give-up fails the message with the
dead-letter reason and error the policy chose (`GIVEN_UP` in its options), which
worker/runtime/middleware.py's `DeadLetters` then records.
Foreign exceptions that reach here untranslated meet the broker's own boundary: a Redis error is an
outage, and so is Dramatiq's time limit (a pass that ran out of time waited on a slow Kinde).

The retry copy cannot be lost to a broker outage. Dramatiq's `Retries` enqueues it with a plain
`broker.enqueue`; when Redis is down at that moment the enqueue raises, `Broker.emit_after` logs it
as an "Unexpected failure" and swallows it, and the worker then acks the original once Redis is back
(dramatiq retries a failed ack every 5 s): the event is gone, neither retried nor dead-lettered.
The chaos suite (`python -m chaos redis`) lost events exactly this way (docs/reliability.md).
Here a copy that could not be enqueued is *owed* by its original message, and the ack of that
original first pays it: `before_ack` enqueues the copy, and while Redis still fails it raises an
error that Dramatiq treats as a lost connection, so the ack (with this step) is retried every 5 s and
the original stays in the ack set until its retry is durably queued. Any Redis error counts, not only
a lost connection: a primary demoted by a failover answers READONLY, a full one OOM or MISCONF, and
an error reply escaping here would be swallowed the same way and the original acked. Waiting there, not in
`after_process_message`, keeps the wait outside the actor's TimeLimit. A timed-out enqueue may have
happened anyway: paying again then queues a duplicate, which the coalescer makes harmless.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dramatiq
import redis
import structlog
from dramatiq.errors import ConnectionClosed
from dramatiq.middleware import MiddlewareError, Retries
from dramatiq.middleware.time_limit import TimeLimitExceeded

from common.errors import RetryableError
from common.infra.deadletters import RETRIES_EXHAUSTED
from worker.runtime.retry_policy import FAILURES, MIN_BACKOFF_MS, Budget, GiveUp, RetryIn, decide, describe

log = structlog.get_logger(__name__)
GIVEN_UP = "given_up"  # [reason, last_error] of a message the policy failed, for DeadLetters
Owed = tuple[Any, int | None]  # (the message to queue, its delay ms)
# Any Redis error, as common/infra/connections.py `redis_errors` translates it: unreachable, or refusing writes for
# a while (a primary demoted by a failover: READONLY; full: OOM). A broker enqueue inside a pass (a webhook,
# a converge request) raises it untranslated; counted as a bug it was dead-lettered after 3 quick tries.
_REDIS_DOWN = redis.RedisError


class QuietRetryable(dramatiq.Retry):
    """A `RetryableError` on its way from an actor to `decide`, which judges the error it carries.
    Dressed as Dramatiq's `Retry` only because the worker thread logs every other
    exception (but `throws`) as a crash, full message and traceback: a wait or an outage is neither."""

    def __init__(self, error: RetryableError) -> None:
        super().__init__(describe(error))
        self.error = error


@contextmanager
def retried_quietly() -> Iterator[None]:
    """What every actor runs its work in: a `RetryableError` leaves as a `QuietRetryable` (the one translation)."""
    try:
        yield
    except RetryableError as exc:
        raise QuietRetryable(exc) from exc


class RetryOwed(MiddlewareError, ConnectionClosed):
    """Raised from `before_ack`: `emit_before` re-raises only MiddlewareError, and the consumer
    retries post-processing (the ack) only on a BrokerConnectionError, hence both bases."""


class DurableRetries(Retries):
    def __init__(self, *, max_retries: int, max_backoff: int, min_backoff: int = MIN_BACKOFF_MS) -> None:
        super().__init__(max_retries=max_retries, min_backoff=min_backoff, max_backoff=max_backoff)
        self._owed: dict[str, Owed] = {}
        self._lock = threading.Lock()

    @property
    def actor_options(self) -> set[str]:
        """The budget, and `exhausted_as` (the dead letter's reason once it is spent); no `retry_when`
        or `on_retry_exhausted`: `decide` is the one predicate. `throws` is accepted for Dramatiq's
        worker, which reads it to log such a failure at INFO, not as a crash; the actors name only
        `PermanentError`, which `decide` fails at once anyway."""
        return {"max_retries", "min_backoff", "max_backoff", "exhausted_as", "throws"}

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        if exception is None:
            return
        failures = int(message.options.get(FAILURES, 0))
        decision = decide(_ours(exception), failures, self._budget(broker, message))
        if isinstance(decision, GiveUp):
            message.options[GIVEN_UP] = [decision.reason, decision.last_error]
            message.fail()
            return
        self._requeue(broker, message, decision)

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
        except redis.RedisError as exc:  # also an error reply: READONLY after a failover, OOM, MISCONF
            self.owe(original, owed)
            log.warning("retry_enqueue_deferred", message_id=original.message_id, error=type(exc).__name__)
            reason = f"retry of {original.message_id} not queued yet: {type(exc).__name__}"
            raise RetryOwed(reason) from None  # type: ignore[no-untyped-call]
        log.info("retry_enqueue_paid", message_id=original.message_id)

    def _budget(self, broker: Any, message: Any) -> Budget:
        actor = broker.get_actor(message.actor_name).options

        def option(name: str, default: int) -> int:
            return int(message.options.get(name, actor.get(name, default)))

        return Budget(
            max_retries=option("max_retries", self.max_retries),
            max_backoff_ms=option("max_backoff", self.max_backoff),
            min_backoff_ms=option("min_backoff", self.min_backoff),
            exhausted_reason=str(actor.get("exhausted_as", RETRIES_EXHAUSTED)),
        )

    def _requeue(self, broker: Any, message: Any, decision: RetryIn) -> None:
        message.options[FAILURES] = decision.failures
        message.options["retries"] = int(message.options.get("retries", 0)) + 1  # deliveries, for logs
        message.options["requeue_timestamp"] = int(time.time() * 1000)
        try:
            broker.enqueue(message, delay=decision.delay_ms)
        except redis.RedisError as exc:  # also an error reply: READONLY after a failover, OOM, MISCONF
            self.owe(message, (message, decision.delay_ms))
            log.warning("retry_enqueue_deferred", message_id=message.message_id, error=type(exc).__name__)


def _ours(exception: BaseException) -> BaseException:
    """Translate what the broker itself can raise into the error tree; everything else as it is."""
    if isinstance(exception, QuietRetryable):
        return exception.error
    if isinstance(exception, _REDIS_DOWN):
        return RetryableError(f"redis unavailable: {type(exception).__name__}", reason="redis")
    if isinstance(exception, TimeLimitExceeded):
        return RetryableError("the attempt ran out of time (Dramatiq's time limit)", reason="time_limit")
    return exception


def _key(message: Any) -> str:
    return str(message.options.get("redis_message_id") or message.message_id)
