"""Real RS256 signing keys and tokens for the ingest tests, plus the hostile variants Kinde never sends."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(obj: object) -> str:
    return b64url(json.dumps(obj).encode())


@dataclass
class Signer:
    kid: str = field(default_factory=lambda: f"4c:fa:{uuid.uuid4().hex[:8]}")
    private_key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))

    def jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key.public_key()))
        return {**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, claims: dict[str, Any], *, kid: str | None = None) -> str:
        return jwt.encode(claims, self.private_key, algorithm="RS256", headers={"kid": kid or self.kid})

    def sign_raw(self, payload: bytes) -> str:
        """A correctly signed token whose payload is these bytes, JSON or not."""
        return jwt.api_jws.encode(payload, self.private_key, algorithm="RS256", headers={"kid": self.kid})


def jwks(*signers: Signer) -> dict[str, Any]:
    return {"keys": [s.jwk() for s in signers]}


def claims(event_type: str = "customer.plan_assigned", *, at: datetime | None = None, **extra: Any) -> dict[str, Any]:
    when = at or datetime.now(UTC)
    return {
        "type": event_type,
        "event_id": f"event_{uuid.uuid4().hex}",
        "timestamp": when.isoformat(),
        "source": "user",
        "data": {"customer_id": "customer_0195ac80", "plan": {"code": "plan_client"}},
        **extra,
    }


def unsigned(payload: dict[str, Any], kid: str) -> str:
    """`alg: none`: a token with an empty signature."""
    return f"{b64json({'alg': 'none', 'kid': kid, 'typ': 'JWT'})}.{b64json(payload)}."


def hs256_with_public_key(payload: dict[str, Any], signer: Signer) -> str:
    """The classic key-confusion forgery: HMAC keyed with the RSA public key the attacker can download."""
    signing_input = f"{b64json({'alg': 'HS256', 'kid': signer.kid, 'typ': 'JWT'})}.{b64json(payload)}"
    mac = hmac.new(signer.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


DEPTH = 20_000  # past every supported Python's limit (3.13's C JSON decoder still takes 5,000): a RecursionError


def deep_header(signer: Signer) -> str:
    """The reported token: a header segment of DEPTH `[`, then an ordinary payload and signature."""
    _, payload, signature = signer.sign(claims()).split(".")
    return f"{b64url(b'[' * DEPTH)}.{payload}.{signature}"


def deep_header_object(signer: Signer) -> str:
    """A header that starts as a proper RS256 object with our kid, with one member nested deep inside."""
    header = f'{{"alg":"RS256","kid":"{signer.kid}","x":{"[" * DEPTH}1{"]" * DEPTH}}}'
    _, payload, signature = signer.sign(claims()).split(".")
    return f"{b64url(header.encode())}.{payload}.{signature}"


def deep_payload(signer: Signer) -> str:
    """A payload nested DEPTH deep under a valid signature, so it reaches the JSON decoder."""
    return signer.sign_raw(('{"a":' + "[" * DEPTH + "1" + "]" * DEPTH + "}").encode())


def tampered(token: str, **changes: Any) -> str:
    """The token with its payload rewritten and the original signature kept."""
    header, payload, signature = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return f"{header}.{b64json({**body, **changes})}.{signature}"


def ago(**delta: float) -> datetime:
    return datetime.now(UTC) - timedelta(**delta)


def ahead(**delta: float) -> datetime:
    return datetime.now(UTC) + timedelta(**delta)
