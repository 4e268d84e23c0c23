"""What Kinde's answer means: every reply (or lack of one) from Kinde becomes data or the error tree.

The one home of this classification; worker/kinde/api.py and worker/kinde/token.py feed it a status, headers
and body, or wrap their call in `map_errors`. What then happens to a failed message is
worker/runtime/retry_policy.py's decision, not this module's.

* timeouts, connection errors, 408/425/5xx → `RetryableError` (an outage: the failure budget)
* 429 → `RateLimitedError` with `retry_after_s` from `RateLimit-Reset` (or `Retry-After`), at most
  `MAX_RATE_LIMIT_WAIT_S`
* 403 → `ForbiddenError` (`kinde_forbidden`) naming the endpoint and the scope (from the body, else
  worker/kinde/scopes.py). The Kinde client first refetches a token that was not fresh (worker/kinde/api.py).
* any other 4xx → `PermanentError("kinde_<CODE>")`
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx

from common.errors import ForbiddenError, PermanentError, RateLimitedError, RetryableError, ServiceError
from worker.kinde.scopes import scope_for

DEFAULT_RATE_LIMIT_WAIT_S = 1.0
# Kinde publishes no figures; a reset beyond this (or not a finite number) is a broken header, not a
# wait: the broker cannot queue `inf`, and a wait of decades never ends. An hour, then we ask again.
MAX_RATE_LIMIT_WAIT_S = 3600.0
_SCOPE = re.compile(r"\b((?:read|create|update|delete):[a-z_]+)\b")
# Kinde's answers meaning something is gone: the `PermanentError` reasons `classify` gives them.
USER_NOT_FOUND = "kinde_USER_NOT_FOUND"
ORG_NOT_FOUND = "kinde_ORGANIZATION_NOT_FOUND"
NOT_IN_ORG = "kinde_USER_NOT_IN_ORGANIZATION"
# The membership itself is gone (the user left, or the user or org was deleted): a target's roles go with it.
GONE = frozenset({NOT_IN_ORG, ORG_NOT_FOUND, USER_NOT_FOUND})
# A look-up of one user found none (deleted, or an id Kinde never had: a code-less 404).
GONE_USER = frozenset({USER_NOT_FOUND, "kinde_HTTP_404"})


@contextmanager
def map_errors(endpoint: str) -> Iterator[None]:
    """No answer at all: timeouts, refused connections and broken transfers are an outage."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise RetryableError(f"Kinde timed out on {endpoint}", reason="kinde_timeout") from exc
    except httpx.TransportError as exc:
        raise RetryableError(
            f"cannot reach Kinde for {endpoint}: {type(exc).__name__}", reason="kinde_unreachable"
        ) from exc


def body_of(response: httpx.Response) -> Any:
    """The answer's JSON body, or None when it is not JSON (a proxy's HTML page, an empty 204)."""
    try:
        return response.json()
    except ValueError:
        return None


def error_codes(body: Any) -> list[str]:
    """Kinde's `errors` is a list of {code, message} (or, for unknown routes, a single object)."""
    return [str(item["code"]) for item in _errors(body) if item.get("code")]


def error_text(body: Any) -> str:
    return " ".join(str(item.get("message", "")) for item in _errors(body))


def missing_scope(body: Any) -> str | None:
    match = _SCOPE.search(error_text(body))
    return match.group(1) if match else None


def retry_after_s(headers: Mapping[str, str]) -> float:
    """Seconds until Kinde lifts a 429: `RateLimit-Reset` (documented), else `Retry-After`, else a default."""
    for name in ("ratelimit-reset", "retry-after"):
        raw = headers.get(name, "").strip()
        try:
            wait = float(raw)
        except ValueError:
            continue
        return min(max(0.0, wait), MAX_RATE_LIMIT_WAIT_S) if math.isfinite(wait) else DEFAULT_RATE_LIMIT_WAIT_S
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


def _errors(body: Any) -> list[Mapping[str, Any]]:
    errors = body.get("errors") if isinstance(body, Mapping) else None
    items = errors if isinstance(errors, list) else [errors] if isinstance(errors, Mapping) else []
    return [item for item in items if isinstance(item, Mapping)]
