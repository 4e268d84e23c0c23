"""Seeded hostile inputs for the ingest: every one must be refused with a 4xx, none may crash it.

`generate(rng, material)` yields (kind, raw HTTP request bytes). Kinds that need raw sockets (lying
Content-Length, chunked + length) are built as whole requests here too, so one sender serves all.
Mutations of a valid token always change its decoded bytes: base64url has spare bits in the last
character, and a "mutation" that decodes to the same signature is the same token, rightly accepted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@dataclass(frozen=True)
class Material:
    """Real tokens to mutate, tokens with an unknown kid, and the public key PEM (for HS256 confusion)."""

    valid: list[str]
    unknown_kid: list[str]
    public_pem: bytes
    kid: str
    port: int
    deep_signed: list[str]  # validly signed tokens whose payload JSON nests past the recursion limit


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _decoded(token: str) -> list[bytes] | None:
    try:
        return [unb64(part) for part in token.split(".")]
    except (ValueError, TypeError):
        return None


def request(port: int, body: bytes, *, content_type: str = "application/jwt", head: str | None = None) -> bytes:
    length = head if head is not None else f"Content-Length: {len(body)}\r\n"
    return (
        f"POST /webhooks/kinde HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {content_type}\r\n"
        f"webhook-id: fuzz\r\n{length}Connection: close\r\n\r\n"
    ).encode() + body


def flip_char(rng: random.Random, m: Material) -> bytes:
    token = rng.choice(m.valid)
    while True:
        i = rng.randrange(len(token))
        if token[i] == ".":
            continue
        mutated = token[:i] + rng.choice(B64URL.replace(token[i], "")) + token[i + 1 :]
        if _decoded(mutated) != _decoded(token):
            return mutated.encode()


def truncate(rng: random.Random, m: Material) -> bytes:
    token = rng.choice(m.valid)
    while True:
        cut = token[: rng.randrange(len(token))]
        if _decoded(cut) != _decoded(token):
            return cut.encode()


def tamper_claims(rng: random.Random, m: Material) -> bytes:
    header, payload, signature = rng.choice(m.valid).split(".")
    claims = json.loads(unb64(payload))
    claims["data"] = {"customer_id": f"customer_{rng.getrandbits(64):x}", "plan": {"code": "plan_client"}}
    return f"{header}.{b64(json.dumps(claims).encode())}.{signature}".encode()


def alg_none(rng: random.Random, m: Material) -> bytes:
    payload = rng.choice(m.valid).split(".")[1]
    header = b64(json.dumps({"alg": rng.choice(["none", "None", "NONE", "nOnE"]), "kid": m.kid}).encode())
    return f"{header}.{payload}.{rng.choice(['', 'AAAA'])}".encode()


def hs256_public_key(rng: random.Random, m: Material) -> bytes:
    payload = rng.choice(m.valid).split(".")[1]
    header = b64(json.dumps({"alg": rng.choice(["HS256", "HS384", "HS512"]), "kid": m.kid, "typ": "JWT"}).encode())
    signing_input = f"{header}.{payload}".encode()
    return f"{header}.{payload}.{b64(hmac.new(m.public_pem, signing_input, hashlib.sha256).digest())}".encode()


def unknown_kid(rng: random.Random, m: Material) -> bytes:
    return rng.choice(m.unknown_kid).encode()


def huge(rng: random.Random, m: Material) -> bytes:
    size = rng.choice([64 * 1024 + 1, 256 * 1024, 1024 * 1024, 4 * 1024 * 1024])
    return (rng.choice(m.valid) * (size // 800 + 1)).encode()[:size]


def non_utf8(rng: random.Random, _: Material) -> bytes:
    return bytes(rng.getrandbits(8) | 0x80 for _ in range(rng.randrange(1, 4000)))


def json_bomb(rng: random.Random, m: Material) -> bytes:
    depth = rng.choice([1000, 10000, 40000])
    header = b64(json.dumps({"alg": "RS256", "kid": m.kid}).encode())
    body = nested(depth, as_object=rng.random() < 0.5)
    return f"{header}.{b64(body.encode())}.{rng.choice(m.valid).split('.')[2]}".encode()


def deep_header(rng: random.Random, m: Material) -> bytes:
    """Unauthenticated: the header segment alone nests past the JSON decoder's recursion limit."""
    depth = rng.choice([2000, 5000, 20000])
    shapes = [
        "[" * depth,
        "[" * depth + "]" * depth,
        f'{{"alg":"RS256","kid":"{m.kid}","x":{"[" * depth}1{"]" * depth}}}',
    ]
    _, payload, signature = rng.choice(m.valid).split(".")
    return f"{b64(rng.choice(shapes).encode())}.{payload}.{signature}".encode()


def deep_payload(rng: random.Random, m: Material) -> bytes:
    """A signature that verifies, over a payload nested too deep to decode (json_bomb's never verifies)."""
    return rng.choice(m.deep_signed).encode()


def nested(depth: int, *, as_object: bool) -> str:
    return '{"a":' * depth + "1" + "}" * depth if as_object else "[" * depth + "]" * depth


def segments(rng: random.Random, m: Material) -> bytes:
    parts = rng.choice(m.valid).split(".")
    shapes = [".".join(parts[:2]), ".".join([*parts, parts[2]]), "..", ".".join(reversed(parts)), "", "a.b.c"]
    return rng.choice(shapes).encode()


def lying_length(rng: random.Random, m: Material) -> tuple[bytes, str]:
    body = rng.choice(m.valid).encode()
    heads = [
        f"Content-Length: {len(body) + rng.randrange(1, 5000)}\r\n",  # promises more than it sends
        f"Content-Length: {rng.randrange(0, len(body))}\r\n",  # less: the rest looks like a next request
        "Content-Length: -1\r\n",
        "Content-Length: abc\r\n",
        f"Content-Length: {10**15}\r\n",
        f"Content-Length: {len(body)}\r\nContent-Length: {len(body) + 7}\r\n",
        f"Content-Length: {len(body)}\r\nTransfer-Encoding: chunked\r\n",
    ]
    return body, rng.choice(heads)


TOKEN_KINDS: dict[str, Callable[[random.Random, Material], bytes]] = {
    "flip_char": flip_char, "truncate": truncate, "tamper_claims": tamper_claims, "alg_none": alg_none,
    "hs256_public_key": hs256_public_key, "unknown_kid": unknown_kid, "huge": huge, "non_utf8": non_utf8,
    "json_bomb": json_bomb, "segments": segments, "deep_header": deep_header, "deep_payload": deep_payload,
}  # fmt: skip
WEIGHTS = {"flip_char": 30, "truncate": 10, "tamper_claims": 10, "alg_none": 6, "hs256_public_key": 6,
           "unknown_kid": 6, "huge": 3, "non_utf8": 8, "json_bomb": 3, "segments": 5, "lying_length": 8,
           "content_type": 5, "deep_header": 4, "deep_payload": 3}  # fmt: skip


def one(rng: random.Random, m: Material) -> tuple[str, bytes]:
    kind = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
    if kind == "lying_length":
        body, head = lying_length(rng, m)
        return kind, request(m.port, body, head=head)
    if kind == "content_type":
        return kind, request(m.port, flip_char(rng, m), content_type=rng.choice(["application/json", "text/plain", ""]))
    return kind, request(m.port, TOKEN_KINDS[kind](rng, m))


def generate(seed: int, count: int, material: Material) -> Iterator[tuple[str, bytes]]:
    rng = random.Random(seed)
    for _ in range(count):
        yield one(rng, material)
