"""Turn a webhook body into verified claims, or say exactly why not.

Kinde signs each webhook as an RS256 JWT (docs/kinde-facts.md, Webhooks). The header is read
unverified only to pick the key and to refuse any other algorithm before a key lookup, so a
token with `alg: none` or a forged `kid` never costs a JWKS refetch decision it does not need.
`verify` is pure: the key source and the clock are passed in.
"""

from __future__ import annotations

import binascii
import json
from datetime import datetime
from typing import Any, Protocol

import jwt
from jwt.utils import base64url_decode

from ingest.claims import Policy, check_claims
from ingest.rejection import Rejected

ALGORITHM = "RS256"
# Kinde's tokens carry no aud/iss (docs/kinde-facts.md, Webhooks). Time claims are checked in ingest/claims.py
# against the injected clock instead of PyJWT's own, so every time rule is testable the same way.
_DECODE_OPTIONS: Any = {
    "verify_aud": False,
    "verify_iss": False,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "enforce_minimum_key_length": True,
}


class KeySource(Protocol):
    def key_for(self, kid: str) -> jwt.PyJWK:
        """The cached key for `kid`; raises Rejected("unknown_kid") when there is none."""
        ...


def token_text(body: bytes) -> str:
    """A compact JWS is ASCII; anything else is not a token we could have been sent."""
    try:
        text = body.decode("ascii").strip()
    except UnicodeDecodeError:
        raise Rejected("malformed", "body is not ASCII") from None
    if text.count(".") != 2:
        raise Rejected("malformed", "body is not a compact JWS")
    return text


def signing_kid(token: str) -> str:
    """The `kid` to verify `token` with, after refusing every algorithm but RS256."""
    header = _unverified_header(token)
    if header.get("alg") != ALGORITHM:
        raise Rejected("alg_not_allowed", "only RS256 is accepted")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise Rejected("missing_kid", "token header has no kid")
    return kid


def _unverified_header(token: str) -> dict[str, Any]:
    # Only the header segment is decoded: `jwt.get_unverified_header` validates and decodes all
    # three segments, tripling PyJWT's per-character cost per webhook (docs/benchmarks.md). The
    # token is fully parsed and verified by `jwt.decode` right after the key is chosen.
    # RecursionError: JSON nested past the interpreter's limit, which an unauthenticated sender controls.
    try:
        header = json.loads(base64url_decode(token.split(".", 1)[0]))
    except (ValueError, binascii.Error, RecursionError):
        raise Rejected("malformed", "token header is unreadable") from None
    if not isinstance(header, dict):
        raise Rejected("malformed", "token header is not an object")
    return header


def signed_payload(token: str) -> str | None:
    """The payload segment's JSON text of a token `verify` accepted, for queueing as it is (ingest/event_body.py);
    None when that text is not plain UTF-8 JSON (`json.loads` also reads UTF-16/32 and a BOM: the caller then
    encodes the parsed claims instead)."""
    try:
        raw = base64url_decode(token.split(".", 2)[1])
        return raw.decode("utf-8") if json.detect_encoding(raw) == "utf-8" else None
    except (ValueError, binascii.Error, IndexError):  # UnicodeDecodeError is a ValueError
        return None


def verify(token: str, keys: KeySource, *, now: datetime, policy: Policy) -> dict[str, Any]:
    """Verified, checked claims of `token`, or Rejected with a reason."""
    return verify_by_kid(token, signing_kid(token), keys, now=now, policy=policy)


def verify_by_kid(token: str, kid: str, keys: KeySource, *, now: datetime, policy: Policy) -> dict[str, Any]:
    """`verify` for a caller that already has `signing_kid(token)`, so the header is not decoded twice.

    The kid only picks the key: the signature, and the algorithm against that key, are still checked.
    """
    claims = _decode(token, keys.key_for(kid))
    check_claims(claims, now=now, policy=policy)
    return claims


def _decode(token: str, key: jwt.PyJWK) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(token, key, algorithms=[ALGORITHM], options=_DECODE_OPTIONS)
    except jwt.InvalidAlgorithmError:
        raise Rejected("alg_not_allowed", "token alg does not match the key") from None
    except jwt.InvalidSignatureError:
        raise Rejected("bad_signature", "signature does not verify") from None
    except (jwt.PyJWTError, RecursionError):  # not every PyJWT release we allow wraps a too-deep payload
        raise Rejected("malformed", "token cannot be decoded") from None
    return claims
