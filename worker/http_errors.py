"""The one place httpx's transport exceptions become the service's error tree."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from common.errors import RetryableError


@contextmanager
def map_errors(endpoint: str) -> Iterator[None]:
    """Timeouts, refused connections and broken transfers are all worth another try later."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise RetryableError(f"Kinde timed out on {endpoint}", reason="kinde_timeout") from exc
    except httpx.TransportError as exc:
        raise RetryableError(
            f"cannot reach Kinde for {endpoint}: {type(exc).__name__}", reason="kinde_unreachable"
        ) from exc
