"""Signing key and Kinde-shaped tokens for the ingest benchmark, signed in parallel processes."""

from __future__ import annotations

import json
import multiprocessing
import uuid
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

KID = "bench:key"


def new_private_pem() -> bytes:
    key = rsa.generate_private_key(65537, 2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def jwks_of(private_pem: bytes) -> dict[str, Any]:
    private = serialization.load_pem_private_key(private_pem, password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    return {"keys": [{**jwk, "kid": KID, "use": "sig", "alg": "RS256"}]}


def event_claims() -> dict[str, Any]:
    return {
        "type": "customer.plan_assigned",
        "event_id": f"event_{uuid.uuid4().hex}",
        "timestamp": datetime.now(UTC).isoformat(),
        "source": "user",
        "data": {"customer_id": f"customer_{uuid.uuid4().hex[:16]}", "plan": {"code": "plan_client"}},
    }


def _sign(args: tuple[bytes, int]) -> list[str]:
    pem, count = args
    key = serialization.load_pem_private_key(pem, password=None)
    return [jwt.encode(event_claims(), key, algorithm="RS256", headers={"kid": KID}) for _ in range(count)]  # type: ignore[arg-type]


def sign_tokens(private_pem: bytes, count: int, processes: int = 2) -> list[str]:
    """`count` tokens with unique event ids, so the real ingest enqueues every one."""
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        parts = pool.map(_sign, [(private_pem, count // processes + 1)] * processes)
    return [token for part in parts for token in part][:count]
