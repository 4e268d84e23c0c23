"""The tenant's RS256 signing keys: the JWKS it publishes, signing, and rotation.

Kinde's `kid` is a colon-separated hex fingerprint (`4c:fa:9e:…`), so ours is too: code that
assumes a short or URL-safe kid breaks here as it would against a real tenant. Retired keys stay
in the JWKS until their grace period ends, so tokens signed just before a rotation still verify.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


@dataclass
class SigningKey:
    kid: str
    private: rsa.RSAPrivateKey
    retire_at: float | None = None  # monotonic time after which the key leaves the JWKS

    def jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}


def fingerprint(key: rsa.RSAPrivateKey) -> str:
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return ":".join(f"{byte:02x}" for byte in hashlib.sha256(der).digest()[:16])


def generate_key() -> SigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return SigningKey(kid=fingerprint(private), private=private)


class KeyRing:
    def __init__(self) -> None:
        self._keys: list[SigningKey] = [generate_key()]
        self._strangers: dict[str, SigningKey] = {}

    @property
    def current(self) -> SigningKey:
        return self._keys[-1]

    def published(self) -> list[SigningKey]:
        now = time.monotonic()
        self._keys = [k for k in self._keys if k.retire_at is None or k.retire_at > now]
        return list(self._keys)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.jwk() for key in self.published()]}

    def find(self, kid: str) -> SigningKey | None:
        return next((k for k in self.published() if k.kid == kid), None)

    def rotate(self, *, grace_s: float) -> SigningKey:
        """A new current key; the old ones leave the JWKS after `grace_s` (0 drops them at once)."""
        retire_at = time.monotonic() + grace_s
        for key in self._keys:
            key.retire_at = retire_at if key.retire_at is None else min(key.retire_at, retire_at)
        self._keys.append(generate_key())
        return self.current

    def sign(self, claims: dict[str, Any], *, kid: str | None = None) -> str:
        key = (self.find(kid) or self._stranger(kid)) if kid else self.current
        return jwt.encode(claims, key.private, algorithm="RS256", headers={"kid": key.kid, "typ": "JWT"})

    def sign_raw(self, payload: str) -> str:
        """A validly signed token whose payload is this text as it is: lets the fuzz reach the JSON decoder."""
        headers = {"kid": self.current.kid, "typ": "JWT"}
        return jwt.api_jws.encode(payload.encode(), self.current.private, algorithm="RS256", headers=headers)

    def _stranger(self, kid: str) -> SigningKey:
        """A key never published under `kid`: lets tests forge a token the JWKS cannot verify."""
        if kid not in self._strangers:
            self._strangers[kid] = SigningKey(kid=kid, private=generate_key().private)
        return self._strangers[kid]
