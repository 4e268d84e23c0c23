"""M2M access tokens: issued by `POST /oauth2/token`, checked on every `/api/v1` call.

Tokens are RS256 JWTs with Kinde's claims (`aud`, `azp`, `gty`, `scope`, `exp`, …), signed by the
tenant key like real ones. `revoke_all` models every outstanding token going bad at once (expiry
or a secret rotation) so tests can exercise a client's 401 → new token path.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import jwt

from sandbox import ids
from sandbox.signing import KeyRing

# The scopes the Management API endpoints the sandbox serves ask for (docs/kinde-facts.md, Management API).
ALL_SCOPES = (
    "read:roles",
    "read:users",
    "read:organizations",
    "read:organization_users",
    "read:organization_user_roles",
    "create:organization_user_roles",
    "delete:organization_user_roles",
    "read:billing_agreements",
    "create:billing_agreements",
    "read:billing_entitlements",
    "read:webhooks",
    "create:webhooks",
    "update:webhooks",
    "delete:webhooks",
)


class TokenRejected(Exception):
    """Why a bearer token was refused; the message is safe to show (it never holds the token)."""


@dataclass
class TokenIssuer:
    keys: KeyRing
    issuer: str
    audience: str
    lifetime_s: int
    granted_scopes: tuple[str, ...] = ALL_SCOPES
    revoked: set[str] = field(default_factory=set)
    issued: int = field(default=0)
    # Kept so a test can prove no log line ever carried one (the secrets suite greps for them).
    issued_tokens: list[str] = field(default_factory=list)

    def issue(self, client_id: str, requested: str = "", audience: str = "") -> dict[str, Any]:
        self.issued += 1
        now = int(time.time())
        claims = {
            "aud": [audience or self.audience],
            "azp": client_id,
            "exp": now + self.lifetime_s,
            "gty": ["client_credentials"],
            "iat": now,
            "iss": self.issuer,
            "jti": ids.opaque_id(),
            "scope": " ".join(self._scopes(requested)),
        }
        token = self.keys.sign(claims)
        self.issued_tokens.append(token)
        return {"access_token": token, "expires_in": self.lifetime_s, "scope": claims["scope"], "token_type": "bearer"}

    def _scopes(self, requested: str) -> list[str]:
        wanted = requested.split()
        return [s for s in self.granted_scopes if not wanted or s in wanted]

    def scopes_of(self, authorization: str) -> set[str]:
        """The scopes a valid `Authorization: Bearer …` header carries; TokenRejected otherwise."""
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise TokenRejected("Missing bearer token")
        claims = self._decode(token.strip())
        if token.strip() in self.revoked:
            raise TokenRejected("Token has been revoked")
        # Scopes are fixed in the token, as on Kinde; one withdrawn from the app since stops working at once.
        return set(str(claims.get("scope", "")).split()) & set(self.granted_scopes)

    def _decode(self, token: str) -> dict[str, Any]:
        try:
            kid = jwt.get_unverified_header(token).get("kid", "")
            key = self.keys.find(str(kid))
            if key is None:
                raise TokenRejected("Token signed by an unknown key")
            # The signature proves we issued it; the audience was checked when it was issued.
            decoded: dict[str, Any] = jwt.decode(
                token, key.private.public_key(), algorithms=["RS256"], options={"verify_aud": False}, leeway=2
            )
            return decoded
        except jwt.ExpiredSignatureError:
            raise TokenRejected("Token has expired") from None
        except jwt.PyJWTError:
            raise TokenRejected("Invalid token") from None

    def revoke_all(self) -> None:
        # By identity, not by `iat`: iat has whole-second resolution, so a cut-off by time either
        # spared tokens issued in the revoking second or post-dated the next ones.
        self.revoked.update(self.issued_tokens)
