"""The three apps the ingest benchmark compares, each built by a uvicorn `--factory` in its own process.

(a) echo: Starlette reading the body and answering 200 JSON; (b) verify: (a) plus RS256
verification with a cached key; (c) the real ingest app (JWKS preloaded, real Redis, logs, metrics);
and the key server (d), the Express peer, verifies against. The JWKS document comes in BENCH_JWKS,
Redis in REDIS_URL.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from common.infra.logs import configure_logging
from common.settings import Settings
from ingest.app import MAX_BODY_BYTES, create_app
from ingest.claims import Policy
from ingest.jwks import JwksCache, parse_jwks
from ingest.rejection import Rejected
from ingest.verify import token_text, verify

PATH = "/webhooks/kinde"


def _jwks() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(os.environ["BENCH_JWKS"])
    return document


class StaticKeys:
    def __init__(self, keys: dict[str, jwt.PyJWK]) -> None:
        self.keys = keys

    def key_for(self, kid: str) -> jwt.PyJWK:
        if kid not in self.keys:
            raise Rejected("unknown_kid", "no such kid")
        return self.keys[kid]


def echo_app() -> Starlette:
    async def echo(request: Request) -> Response:
        await request.body()
        return JSONResponse({"status": "queued"})

    return Starlette(routes=[Route(PATH, echo, methods=["POST"], max_body_size=MAX_BODY_BYTES)])


def verify_app() -> Starlette:
    keys, policy = StaticKeys(parse_jwks(_jwks())), Policy()

    async def verified(request: Request) -> Response:
        try:
            verify(token_text(await request.body()), keys, now=datetime.now(UTC), policy=policy)
        except Rejected as exc:
            return JSONResponse({"error": exc.reason}, status_code=exc.status_code)
        return JSONResponse({"status": "queued"})

    return Starlette(routes=[Route(PATH, verified, methods=["POST"], max_body_size=MAX_BODY_BYTES)])


def jwks_app() -> Starlette:
    """The key server for (d), the Express + @kinde/webhooks peer: BENCH_JWKS where a Kinde domain serves it.
    The peer fetches it for every webhook (bench/peers/express-kinde/server.js)."""
    document = _jwks()

    async def keys(request: Request) -> Response:
        return JSONResponse(document)

    return Starlette(routes=[Route("/.well-known/jwks.json", keys)])


def ingest_app() -> Starlette:
    configure_logging("info")
    local = {"KINDE_DOMAIN": "https://bench.invalid", "ROLESYNC_INSECURE_LOCAL": "1"}  # not a Kinde host: bench only
    settings = Settings.from_env({**os.environ, **local})
    document = _jwks()

    async def fetch() -> object:
        return document

    return create_app(settings, keys=JwksCache(fetch, cooldown_s=settings.jwks_refetch_cooldown_s))
