"""One M2M access token for every worker process on every host, kept in Redis.

Every `/oauth2/token` call is a billable M2M token, so processes share one: the token, its
expiry and when it was issued sit in `keys.KINDE_TOKEN`; when it is missing or near expiry exactly
one process (the holder of `keys.KINDE_TOKEN_LOCK`, SET NX PX) fetches a new one while the others
wait briefly for it. When Kinde rejects a token (401, or 403 on a token that is not `fresh`) the
caller invalidates the token it used, and only that one (worker/kinde/api.py).
The token is never logged: it lives in this module and in the Authorization header only, and
Redis holds it sealed (worker/kinde/token_crypto.py): a value that does not open counts as no token.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

import httpx
import redis

from common import keys
from common.errors import PermanentError, RetryableError, ServiceError
from common.infra.connections import redis_errors
from common.settings import Settings
from worker.kinde.answers import body_of, classify, map_errors
from worker.kinde.token_crypto import TokenCipher

REFRESH_MARGIN_S = 120.0
LOCK_MS = 10_000
WAIT_FOR_PEER_S = 3.0
DEFAULT_LIFETIME_S = 3600.0
# A 403 on a token younger than this is a missing scope, not a stale token: a refetch would get
# the same scopes. Long enough that a scope outage costs the fleet at most one fetch per window.
FRESH_S = 15.0


class TokenSource(Protocol):
    def get(self) -> str: ...

    def invalidate(self, token: str) -> None: ...

    def fresh(self, token: str) -> bool:
        """Issued so recently that Kinde's refusal of it cannot be a revoked or outdated token."""


def fetch_token(client: httpx.Client, settings: Settings) -> tuple[str, float]:
    """POST the client-credentials grant; return (access_token, expires_in seconds)."""
    form = {
        "grant_type": "client_credentials",
        "client_id": settings.kinde_client_id,
        "client_secret": settings.kinde_client_secret.reveal(),
        "audience": settings.kinde_audience,
    }
    with map_errors("POST /oauth2/token"):
        response = client.post(f"{settings.kinde_domain}/oauth2/token", data=form)
    body = body_of(response)
    error = classify(response.status_code, response.headers, body, endpoint="POST /oauth2/token")
    if error is not None:
        raise _named_oauth_error(error, body)
    if not isinstance(body, dict) or not body.get("access_token"):
        raise PermanentError("Kinde's token answer has no access_token", reason="kinde_bad_token_response")
    return str(body["access_token"]), float(body.get("expires_in") or DEFAULT_LIFETIME_S)


def _named_oauth_error(error: ServiceError, body: Any) -> ServiceError:
    """The token endpoint answers OAuth's `{"error", "error_description"}`, not Kinde's errors list: name it."""
    code = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, PermanentError) or not isinstance(code, str) or not code:
        return error
    described = str(body.get("error_description") or "")[:200]
    return PermanentError(f"Kinde refused the M2M token request: {code} ({described})", reason=f"kinde_{code}")


def shared_tokens(
    client: redis.Redis,
    http: httpx.Client,
    settings: Settings,
    *,
    on_fetch: Callable[[], None],
    fresh_s: float = FRESH_S,
) -> RedisTokenSource:
    """The fleet's shared token for these settings, sealed in Redis with a key from their client secret."""
    cipher = TokenCipher.from_secret(settings.kinde_client_secret)
    return RedisTokenSource(
        client, lambda: fetch_token(http, settings), cipher=cipher, on_fetch=on_fetch, fresh_s=fresh_s
    )


class RedisTokenSource:
    def __init__(
        self,
        client: redis.Redis,
        fetch: Callable[[], tuple[str, float]],
        *,
        cipher: TokenCipher,
        on_fetch: Callable[[], None],
        fresh_s: float = FRESH_S,
    ) -> None:
        self._redis = client
        self._cipher = cipher
        self._fetch = fetch
        self._on_fetch = on_fetch
        self._fresh_s = fresh_s

    def get(self) -> str:
        entry = self._entry()
        if entry and float(entry["refresh_at"]) > time.time():
            return str(entry["token"])
        lock = str(uuid.uuid4())
        with redis_errors("taking the token lock"):
            acquired = self._redis.set(keys.KINDE_TOKEN_LOCK, lock, nx=True, px=LOCK_MS)
        if acquired:
            return self._refresh(lock)
        # Near expiry but still valid: keep using it while the lock holder refreshes.
        return str(entry["token"]) if entry else self._wait_for_peer()

    def invalidate(self, token: str) -> None:
        entry = self._entry()
        if entry and entry.get("token") == token:
            with redis_errors("invalidating the token"):
                self._redis.delete(keys.KINDE_TOKEN)

    def fresh(self, token: str) -> bool:
        entry = self._entry()
        if not entry or entry.get("token") != token:
            return False  # replaced or dropped since: a newer token exists or is being fetched
        return time.time() - float(entry.get("issued_at") or 0) < self._fresh_s

    def _entry(self) -> dict[str, Any] | None:
        with redis_errors("reading the token"):
            raw = self._redis.get(keys.KINDE_TOKEN)
        opened = self._cipher.open(str(raw), bound_to=keys.KINDE_TOKEN) if raw else None
        return dict(json.loads(opened)) if opened else None

    def _refresh(self, lock: str) -> str:
        try:
            token, lifetime = self._fetch()
            self._on_fetch()
            self._store(token, lifetime)
            return token
        finally:
            self._release(lock)

    def _store(self, token: str, lifetime: float) -> None:
        margin = min(REFRESH_MARGIN_S, lifetime / 10)
        now = time.time()
        entry = json.dumps({"token": token, "refresh_at": now + lifetime - margin, "issued_at": now})
        sealed = self._cipher.seal(entry, bound_to=keys.KINDE_TOKEN)
        with redis_errors("storing the token"):
            self._redis.set(keys.KINDE_TOKEN, sealed, px=max(1, int(lifetime * 1000)))

    def _release(self, lock: str) -> None:
        with redis_errors("releasing the token lock"):
            if self._redis.get(keys.KINDE_TOKEN_LOCK) == lock:
                self._redis.delete(keys.KINDE_TOKEN_LOCK)

    def _wait_for_peer(self) -> str:
        deadline = time.monotonic() + WAIT_FOR_PEER_S
        while time.monotonic() < deadline:
            time.sleep(0.05)
            entry = self._entry()
            if entry:
                return str(entry["token"])
        raise RetryableError("another worker is fetching the Kinde token; try again shortly", reason="token_wait")
