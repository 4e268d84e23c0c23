"""Turn a failed attempt into what the broker should do next: a delayed retry or a dead letter.

Every retry is a `dramatiq.Retry(delay=…)`, so no worker thread ever sleeps through a wait:
* 429 and lease contention: retry after Kinde's `RateLimit-Reset` / a short delay, plus jitter.
  These spend no failure budget (a busy customer or a throttled tenant is not a fault); the
  actor's age limit bounds them.
* other `RetryableError`s: exponential back-off with jitter (worker/retry_policy.py), counted in
  the message's own `failures` option; past `max_retries` the event fails as `retries_exhausted`.
* `PermanentError`s pass through untouched: the actor's `throws=` dead-letters them at once.
"""

from __future__ import annotations

import random
from typing import Any

import dramatiq

from common.deadletters import RETRIES_EXHAUSTED
from common.errors import ContendedError, PermanentError, RateLimitedError, RetryableError
from worker.retry_policy import MIN_BACKOFF_MS, backoff_ms

FAILURES = "failures"  # our budget counter in message options (Retries' own `retries` counts every Retry)


class RetriesExhaustedError(PermanentError):
    reason = RETRIES_EXHAUSTED


def next_step(exc: RetryableError, options: dict[str, Any], *, max_retries: int, max_backoff_ms: int) -> BaseException:
    """The exception the actor should raise instead of `exc`; updates `options[FAILURES]`."""
    if isinstance(exc, RateLimitedError | ContendedError):
        wait_ms = int((exc.retry_after_s or 0.25) * 1000)
        return dramatiq.Retry(str(exc), delay=wait_ms + random.randint(0, max(50, wait_ms // 5)))
    failures = int(options.get(FAILURES, 0))
    if failures >= max_retries:
        return RetriesExhaustedError(f"gave up after {failures + 1} failures; last: {exc}")
    options[FAILURES] = failures + 1
    delay = backoff_ms(failures, min_backoff_ms=MIN_BACKOFF_MS, max_backoff_ms=max_backoff_ms)
    return dramatiq.Retry(str(exc), delay=delay)


def retry_when(retries: int, exc: BaseException, *, max_retries: int) -> bool:
    """Dramatiq's `retry_when`: our explicit delayed retries always; anything unexpected within budget."""
    return isinstance(exc, dramatiq.Retry) or retries < max_retries
