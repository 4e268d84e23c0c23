"""How every failure toward Kinde is classified, and how long a message waits before its next try.

Pure functions: the Kinde client feeds them a status, headers and body; the actors feed them an
exception and an attempt count.

Kinds of failure (docs/architecture.md):
* timeouts, connection errors, 408/425/5xx → `RetryableError`: exponential back-off with jitter,
  `min_backoff_ms · 2^n · U(1,2)` capped at `max_backoff_ms` (dramatiq's `compute_backoff`), for
  `max_retries` failures. Defaults (1 s, 30 min cap, 40 failures) ride out ≈ 11 h of Kinde outage
  (`retry_horizon_s`), then the event is dead-lettered as `retries_exhausted`.
* 429 → `RateLimitedError` with `retry_after_s` from `RateLimit-Reset` (or `Retry-After`).
* 403 → `ForbiddenError` (`kinde_forbidden`) naming the endpoint and the scope (from the body, else
  worker/scopes.py). The Kinde client first refetches a token that was not fresh (worker/kinde.py).
* any other 4xx → `PermanentError("kinde_<CODE>")`.
Contention (another worker holds the customer's lease) and 429 are delayed retries that do not
spend the failure budget; an age limit bounds them instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dramatiq.common import compute_backoff

from common.errors import ForbiddenError, PermanentError, RateLimitedError, RetryableError, ServiceError
from worker.scopes import scope_for

MIN_BACKOFF_MS = 1_000
DEFAULT_RATE_LIMIT_WAIT_S = 1.0
_SCOPE = re.compile(r"\b((?:read|create|update|delete):[a-z_]+)\b")


def error_codes(body: Any) -> list[str]:
    """Kinde's `errors` is a list of {code, message} (or, for unknown routes, a single object)."""
    errors = body.get("errors") if isinstance(body, Mapping) else None
    items = errors if isinstance(errors, list) else [errors] if isinstance(errors, Mapping) else []
    return [str(item["code"]) for item in items if isinstance(item, Mapping) and item.get("code")]


def error_text(body: Any) -> str:
    errors = body.get("errors") if isinstance(body, Mapping) else None
    items = errors if isinstance(errors, list) else [errors] if isinstance(errors, Mapping) else []
    return " ".join(str(item.get("message", "")) for item in items if isinstance(item, Mapping))


def missing_scope(body: Any) -> str | None:
    match = _SCOPE.search(error_text(body))
    return match.group(1) if match else None


def retry_after_s(headers: Mapping[str, str]) -> float:
    """Seconds until Kinde lifts a 429: `RateLimit-Reset` (documented), else `Retry-After`, else a default."""
    for name in ("ratelimit-reset", "retry-after"):
        raw = headers.get(name, "").strip()
        try:
            return max(0.0, float(raw))
        except ValueError:
            continue
    return DEFAULT_RATE_LIMIT_WAIT_S


def classify(status: int, headers: Mapping[str, str], body: Any, *, endpoint: str) -> ServiceError | None:
    """The error a Kinde answer means, or None for success (2xx)."""
    if status < 400:
        return None
    if status == 429:
        wait = retry_after_s(headers)
        return RateLimitedError(f"Kinde rate limit on {endpoint}; retry in {wait:.1f}s", retry_after_s=wait)
    if status >= 500 or status in (408, 425):
        return RetryableError(f"Kinde answered {status} on {endpoint}", reason=f"kinde_{status}")
    return _client_error(status, body, endpoint)


def _client_error(status: int, body: Any, endpoint: str) -> PermanentError:
    codes = error_codes(body)
    if status == 403:
        scope = missing_scope(body) or scope_for(endpoint)
        said = f"{codes[0] if codes else 'FORBIDDEN'}: {error_text(body)[:200]}"
        needs = f"; it needs {scope}" if scope else ""
        return ForbiddenError(f"Kinde refused {endpoint} (403 {said}){needs}", endpoint=endpoint, scope=scope)
    code = codes[0] if codes else f"HTTP_{status}"
    return PermanentError(f"Kinde answered {status} {code} on {endpoint}", reason=f"kinde_{code}")


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
