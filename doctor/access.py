"""Doctor's way into the Management API: one fresh M2M token and the worker's own Kinde client.

Doctor fetches its own token rather than reusing the workers' shared one, so the scopes it reports
are the ones Kinde grants now (a cached token keeps the scopes it was issued with). It makes a
handful of calls, once, so it neither waits on the workers' shared rate bucket nor sets their
429 cool-down: a 429 simply fails the check and says to run doctor again.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import jwt

from common.settings import Settings
from worker.kinde.api import HttpxKindeApi
from worker.kinde.token import fetch_token


class FixedToken:
    """A TokenSource that always hands out the one token doctor fetched."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get(self) -> str:
        return self._token

    def invalidate(self, token: str) -> None:
        """Nothing to refresh: a rejected token fails the check that used it."""

    def fresh(self, token: str) -> bool:
        """Fetched by this doctor run, so a 403 is a scope the app lacks now."""
        return True


class Ungated:
    """A KindeGate for a one-off run of a few calls."""

    def wait_turn(self) -> None:
        return None

    def cool_down(self, seconds: float) -> None:
        return None

    def answered(self) -> None:
        return None


@dataclass(frozen=True)
class KindeAccess:
    api: HttpxKindeApi
    token_scopes: frozenset[str] | None  # None: the token does not list its scopes


def connect(settings: Settings, http: httpx.Client) -> KindeAccess:
    """Fetch a token (PermanentError/RetryableError naming Kinde's refusal) and build the client on it."""
    token, _ = fetch_token(http, settings)
    api = HttpxKindeApi(http, settings.kinde_domain, FixedToken(token), Ungated())
    return KindeAccess(api, scopes_in(token))


def scopes_in(token: str) -> frozenset[str] | None:
    """The `scope` claim of our own access token; read, not verified (it only informs the report)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    scope = claims.get("scope")
    return frozenset(scope.split()) if isinstance(scope, str) else None
