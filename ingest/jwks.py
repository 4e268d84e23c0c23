"""The tenant's signing keys: fetched asynchronously, cached, served stale when Kinde is down.

PyJWKClient is synchronous and serves no stale keys (docs/stack-notes.md, PyJWT's PyJWKClient), so the
ingest keeps its own cache. Rules: a known `kid` never waits on the network; an unknown `kid`
forces at most one refetch per cooldown, however many forged kids arrive; a failed fetch keeps
the keys already held; only RSA signing keys are kept, so an `oct` key in the set can never turn
into an HMAC secret.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import jwt

from common.errors import RetryableError
from common.webhooks.signing_keys import usable_keys
from ingest.rejection import Rejected

Fetch = Callable[[], Awaitable[object]]  # ingest/jwks_fetch.py in production: a document or RetryableError
REFRESH_INTERVAL_S = 300.0  # pick up rotations and revocations without waiting for an unknown kid
RETRY_INTERVAL_S = 2.0  # while no key is held, every webhook is answered 503 until a fetch succeeds


def parse_jwks(doc: object) -> dict[str, jwt.PyJWK]:
    """kid -> key for every usable key in a JWKS document (common/webhooks/signing_keys.py)."""
    found = usable_keys(doc)
    if not found:
        raise RetryableError("JWKS holds no usable RSA signing key", reason="jwks_unavailable")
    return found


class JwksCache:
    """A KeySource whose keys come from `fetch`, refreshed in the background and on unknown kids."""

    def __init__(
        self,
        fetch: Fetch,
        *,
        cooldown_s: float,
        clock: Callable[[], float] = time.monotonic,
        on_refresh: Callable[[str], None] = lambda result: None,
    ) -> None:
        self._fetch = fetch
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._on_refresh = on_refresh
        self._keys: dict[str, jwt.PyJWK] = {}
        self._last_forced: float | None = None
        self._lock = asyncio.Lock()

    @property
    def loaded(self) -> bool:
        return bool(self._keys)

    def key_for(self, kid: str) -> jwt.PyJWK:
        try:
            return self._keys[kid]
        except KeyError:
            raise Rejected("unknown_kid", "no signing key with that kid") from None

    async def refresh(self) -> None:
        """Replace the keys with a fresh fetch; on failure keep the old ones and raise RetryableError."""
        try:
            self._keys = parse_jwks(await self._fetch())
        except RetryableError:
            self._on_refresh("error")
            raise
        self._on_refresh("ok")

    async def ensure(self, kid: str) -> None:
        """Make `kid` available if one refetch within the cooldown can; never raises for a plain miss."""
        if kid in self._keys:
            return
        async with self._lock:
            if kid in self._keys or not self._may_force():
                self._raise_if_empty()
                return
            self._last_forced = self._clock()
            await self.refresh()

    def _may_force(self) -> bool:
        return self._last_forced is None or self._clock() - self._last_forced >= self._cooldown_s

    def _raise_if_empty(self) -> None:
        if not self._keys:
            raise RetryableError("no signing key is loaded yet", reason="jwks_unavailable")

    async def try_refresh(self) -> bool:
        try:
            await self.refresh()
        except RetryableError:
            return False  # counted by on_refresh; stale keys keep serving
        return True

    async def keep_fresh(self) -> None:
        """Run forever: refresh every REFRESH_INTERVAL_S, or every RETRY_INTERVAL_S while empty."""
        while True:
            await asyncio.sleep(REFRESH_INTERVAL_S if self._keys else RETRY_INTERVAL_S)
            await self.try_refresh()
