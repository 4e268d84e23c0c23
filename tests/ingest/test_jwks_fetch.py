"""The JWKS adapter over real HTTP: a document, or a RetryableError; never an httpx exception."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from common.errors import RetryableError
from ingest.jwks_fetch import fetch_jwks
from tests.ingest.servers import JwksEndpoint, serving
from tests.procs import free_port


def fetch(url: str) -> object:
    async def once() -> object:
        async with httpx.AsyncClient(timeout=5.0) as client:
            return await fetch_jwks(client, url)

    return asyncio.run(once())


def test_a_served_jwks_is_returned_as_parsed_json(jwks_endpoint: JwksEndpoint) -> None:
    assert fetch(jwks_endpoint.url) == jwks_endpoint.document


def test_an_error_status_is_retryable(jwks_endpoint: JwksEndpoint) -> None:
    jwks_endpoint.up = False
    with pytest.raises(RetryableError, match="HTTPStatusError") as caught:
        fetch(jwks_endpoint.url)
    assert caught.value.reason == "jwks_unavailable"


def test_a_body_that_is_not_json_is_retryable() -> None:
    app = Starlette(routes=[Route("/jwks", lambda request: PlainTextResponse("<html>maintenance</html>"))])
    with serving(app) as url, pytest.raises(RetryableError, match="not JSON"):
        fetch(f"{url}/jwks")


def test_nobody_listening_is_retryable() -> None:
    with pytest.raises(RetryableError, match="ConnectError"):
        fetch(f"http://127.0.0.1:{free_port()}/jwks")
