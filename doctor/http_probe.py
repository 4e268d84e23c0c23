"""The doctor's HTTP adapter: httpx's failures become the service's error tree here, nowhere else in doctor/.

A check asks for an answer and gets a response, or a RetryableError whose sentence names what failed
(the URL and httpx's exception type, never a header or body).
"""

from __future__ import annotations

from typing import Any

import httpx

from common.errors import RetryableError


def probe(http: httpx.Client, url: str, *, follow_redirects: bool = True) -> httpx.Response:
    """Any answer from `url`, whatever its status; RetryableError when none came."""
    try:
        return http.get(url, follow_redirects=follow_redirects)
    except httpx.HTTPError as exc:
        raise RetryableError(f"{url} unreachable ({type(exc).__name__})", reason="unreachable") from None


def probe_json(http: httpx.Client, url: str) -> tuple[int, Any]:
    """The status and, on a 200, the JSON body (else None); RetryableError when unreachable or not JSON."""
    response = probe(http, url)
    if response.status_code != 200:
        return response.status_code, None
    try:
        return 200, response.json()
    except ValueError:
        raise RetryableError(f"{url} answered 200 with a body that is not JSON", reason="not_json") from None
