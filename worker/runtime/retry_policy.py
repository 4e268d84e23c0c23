"""The one retry predicate: what a failed attempt means for its message (docs/architecture.md § Retries).

Pure functions over the error tree (common/errors.py) and the message's one failure counter
(`FAILURES` in its options). worker/runtime/durable_retries.py applies `decide` to every failed message;
nothing else in the worker retries, counts attempts or dead-letters a failure.

* waits: `RateLimitedError` (429, the shared cool-down, no request slot) and `ContendedError`
  (another pass holds the customer, events still settling, a link not yet learned) → retry after
  their `retry_after_s` plus jitter. They spend no failure budget: a throttled tenant or a busy
  customer is not a fault. The actor's age limit bounds them (`too_old`).
* outages: any other `RetryableError` (Kinde 5xx/408/425, timeouts, unreachable; Redis down) →
  exponential back-off with jitter, `min_backoff · 2^n · U(1,2)` capped at `max_backoff`
  (dramatiq's `compute_backoff`), for `max_retries` failures. Defaults (1 s, 30 min cap, 40) ride out
  ≈ 11 h of outage (`retry_horizon_s`), then `retries_exhausted` (or the actor's `exhausted_as`).
* `PermanentError` (4xx, bad data, a missing scope) → dead letter at once, with its own reason.
* anything else is a bug or something nobody foresaw → `UNEXPECTED_TRIES` tries in all, then
  `unexpected_error` with a one-line summary of the traceback (`summarise`).

Outside the worker's threads one more wait lives here: `patiently`, for a sweeper or CLI process
(reconcile, dry-run discovery) that may wait out Kinde's 429 cool-down in place, bounded in time.
"""

from __future__ import annotations

import random
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ParamSpec, TypeVar

import tenacity
from dramatiq.common import compute_backoff

from common.errors import ContendedError, PermanentError, RateLimitedError, RetryableError
from common.infra.deadletters import RETRIES_EXHAUSTED, UNEXPECTED

FAILURES = "failures"  # the one budget counter, in message options (Dramatiq's `retries` counts waits too)
MIN_BACKOFF_MS = 1_000
UNEXPECTED_TRIES = 3  # a bug rarely heals: enough tries to ride out a fluke, few enough to be seen quickly
DEFAULT_WAIT_S = 0.25
_MESSAGE_CHARS = 300
PATIENCE_S = 300.0  # how long a sweeper waits out Kinde's 429 cool-downs before giving up
P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class Budget:
    max_retries: int  # failures an outage may cost before `retries_exhausted`
    max_backoff_ms: int
    min_backoff_ms: int = MIN_BACKOFF_MS
    unexpected_tries: int = UNEXPECTED_TRIES
    exhausted_reason: str = RETRIES_EXHAUSTED  # the dead letter's reason once an outage spent the budget


@dataclass(frozen=True)
class RetryIn:
    delay_ms: int
    failures: int  # the counter to carry into the retry


@dataclass(frozen=True)
class GiveUp:
    reason: str  # the dead letter's reason
    last_error: str


def decide(exc: BaseException, failures: int, budget: Budget) -> RetryIn | GiveUp:
    """The one predicate: retry (after how long) or dead-letter (why), given the failures so far."""
    if isinstance(exc, RateLimitedError | ContendedError):
        return RetryIn(wait_ms(exc.retry_after_s), failures)
    if isinstance(exc, PermanentError):
        return GiveUp(exc.reason, describe(exc))
    if isinstance(exc, RetryableError):
        last = f"gave up after {failures + 1} failures; last: {describe(exc)}"
        return _spend(failures, budget.max_retries, budget, GiveUp(budget.exhausted_reason, last))
    return _spend(failures, budget.unexpected_tries - 1, budget, GiveUp(UNEXPECTED, summarise(exc)))


def _spend(failures: int, allowed: int, budget: Budget, exhausted: GiveUp) -> RetryIn | GiveUp:
    if failures >= allowed:
        return exhausted
    return RetryIn(backoff_ms(failures, min_backoff_ms=budget.min_backoff_ms, max_backoff_ms=budget.max_backoff_ms),
                   failures + 1)  # fmt: skip


def wait_ms(retry_after_s: float | None) -> int:
    """A wait of `retry_after_s` plus up to a fifth more, so the waiters do not return together."""
    base = int((retry_after_s or DEFAULT_WAIT_S) * 1000)
    return base + random.randint(0, max(50, base // 5))


def backoff_ms(failures: int, *, min_backoff_ms: int, max_backoff_ms: int) -> int:
    """Delay before the retry that follows failure number `failures` (0-based), jittered."""
    _, delay = compute_backoff(failures, factor=min_backoff_ms, max_backoff=max_backoff_ms)
    return int(delay)


def retry_horizon_s(max_retries: int, *, min_backoff_ms: int, max_backoff_ms: int) -> float:
    """Expected total wait before `retries_exhausted` (mean of each jittered delay)."""
    total_ms = 0.0
    for n in range(max_retries):
        uncapped = min_backoff_ms * 2**n * 1.5
        total_ms += uncapped if min_backoff_ms * 2**n * 2 <= max_backoff_ms else 0.75 * max_backoff_ms
    return total_ms / 1000


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {_text(exc)}"[:1000]


def summarise(exc: BaseException) -> str:
    """One line for a human: the exception's type and message, and the innermost frame it came from."""
    message = _text(exc).replace("\n", " ")[:_MESSAGE_CHARS]
    frames = traceback.extract_tb(exc.__traceback__)
    return f"{type(exc).__name__}: {message}{_where(frames[-1]) if frames else ''}"


def _text(exc: BaseException) -> str:
    """Its message; never a failure of its own. This runs in the retry middleware, where an exception is
    swallowed by Dramatiq and the message acked: neither retried nor dead-lettered."""
    try:
        return str(exc)
    except Exception:  # any: a foreign __str__ may raise anything
        return "(its message could not be formed)"


def _where(frame: traceback.FrameSummary) -> str:
    return f" at {'/'.join(Path(frame.filename).parts[-2:])}:{frame.lineno} in {frame.name}"


def patiently(call: Callable[P, R], *, patience_s: float = PATIENCE_S) -> Callable[P, R]:
    """`call`, retried on `RateLimitedError` only, after each one's `retry_after_s`, for `patience_s` in
    all. Never in a worker thread: there a 429 is `decide`'s wait, so no thread sleeps through it."""
    return tenacity.retry(
        retry=tenacity.retry_if_exception_type(RateLimitedError),
        wait=_retry_after,
        stop=tenacity.stop_after_delay(patience_s),
        reraise=True,
    )(call)


def _retry_after(state: tenacity.RetryCallState) -> float:
    error = state.outcome.exception() if state.outcome else None
    return float(getattr(error, "retry_after_s", None) or 1.0)
