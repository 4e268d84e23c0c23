"""The ingest's JWKS adapter: one GET of the tenant's signing keys, httpx's failures as our errors.

The only module of the ingest that calls httpx; JwksCache (ingest/jwks.py) sees a document or a
RetryableError, never an httpx exception.
"""

from __future__ import annotations

import httpx

from common.errors import RetryableError


async def fetch_jwks(client: httpx.AsyncClient, url: str) -> object:
    """The JWKS document at `url`; transport and HTTP failures become RetryableError."""
    try:
        response = await client.get(url)
        response.raise_for_status()
        return response.json()
    except httpx.HTTPError as exc:
        raise RetryableError(f"JWKS fetch from {url} failed: {type(exc).__name__}", reason="jwks_unavailable") from None
    except ValueError:
        raise RetryableError(f"JWKS at {url} is not JSON", reason="jwks_unavailable") from None
