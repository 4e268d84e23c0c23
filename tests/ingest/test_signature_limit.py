"""Bad signatures limited per client address (ingest/signature_limit.py): a flood from one address is refused
with 429 and Retry-After, other addresses are served, and Kinde's shared addresses are never blocked by
another tenant's deliveries.

The app is the real one with its real lifespan (a real JWKS endpoint, real Redis); httpx's ASGI transport
gives each request the client address under test (over uvicorn every test client is 127.0.0.1, which the
last test uses).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from starlette.applications import Starlette

from ingest.app import create_app
from ingest.metrics import Metrics
from tests.ingest.conftest import ingest_settings
from tests.ingest.servers import JwksEndpoint, serving
from tests.ingest.tokens import Signer, claims

LIMIT = 5
FORGER, KINDE, NEIGHBOUR = "203.0.113.7", "198.51.100.20", "192.0.2.44"
JWT = {"content-type": "application/jwt"}


@asynccontextmanager
async def running(app: Starlette) -> AsyncIterator[None]:
    async with app.router.lifespan_context(app):
        yield


async def post(app: Starlette, address: str, token: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
        return await client.post("/webhooks/kinde", content=token, headers=JWT)


def forged(signer: Signer, other_signer: Signer) -> str:
    """Our kid, another key's signature: `bad_signature`."""
    return other_signer.sign(claims(), kid=signer.kid)


def app_for(redis_url: str, jwks_endpoint: JwksEndpoint, metrics: Metrics, **limits: object) -> Starlette:
    settings = ingest_settings(redis_url, jwks_endpoint.url, ingest_signature_failures=LIMIT, **limits)
    return create_app(settings, metrics=metrics)


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def throttled(metrics: Metrics) -> float:
    return sample(metrics, "rolesync_ingest_webhooks_total", outcome="throttled", type="unverified")


def test_a_forger_is_refused_429_after_the_limit_and_everyone_else_is_served(
    redis_url: str, jwks_endpoint: JwksEndpoint, signer: Signer, other_signer: Signer
) -> None:
    metrics = Metrics()
    asyncio.run(forger_then_neighbour(app_for(redis_url, jwks_endpoint, metrics), signer, other_signer))
    assert throttled(metrics) == 1
    assert sample(metrics, "rolesync_ingest_verification_failures_total", reason="bad_signature") == LIMIT


async def forger_then_neighbour(app: Starlette, signer: Signer, other_signer: Signer) -> None:
    async with running(app):
        for _ in range(LIMIT):
            assert (await post(app, FORGER, forged(signer, other_signer))).status_code == 401
        refused = await post(app, FORGER, signer.sign(claims()))  # even a good one: its body is not read
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.json() == {"status": "throttled", "error": "signature_failures"}
        assert (await post(app, NEIGHBOUR, signer.sign(claims()))).json() == {"status": "queued"}


def test_another_tenants_deliveries_from_kindes_address_never_block_ours(
    redis_url: str, jwks_endpoint: JwksEndpoint, signer: Signer, other_signer: Signer
) -> None:
    """A stranger's Kinde business pointed at our URL: its tokens carry its own kids (`unknown_kid`), sent
    from the addresses Kinde delivers ours from. They are refused, never counted."""
    metrics = Metrics()
    asyncio.run(stranger_then_ours(app_for(redis_url, jwks_endpoint, metrics), signer, other_signer))
    assert throttled(metrics) == 0


async def stranger_then_ours(app: Starlette, signer: Signer, other_signer: Signer) -> None:
    async with running(app):
        for _ in range(3 * LIMIT):
            answer = await post(app, KINDE, other_signer.sign(claims()))
            assert (answer.status_code, answer.json()["error"]) == (401, "unknown_kid")
        assert (await post(app, KINDE, signer.sign(claims()))).json() == {"status": "queued"}


def test_zero_turns_the_limit_off(
    redis_url: str, jwks_endpoint: JwksEndpoint, signer: Signer, other_signer: Signer
) -> None:
    app = create_app(ingest_settings(redis_url, jwks_endpoint.url, ingest_signature_failures=0))
    asyncio.run(unlimited(app, signer, other_signer))


async def unlimited(app: Starlette, signer: Signer, other_signer: Signer) -> None:
    async with running(app):
        for _ in range(3 * LIMIT):
            assert (await post(app, FORGER, forged(signer, other_signer))).status_code == 401
        assert (await post(app, FORGER, signer.sign(claims()))).status_code == 200


def test_over_real_http_the_429_carries_retry_after_and_is_counted_on_metrics(
    redis_url: str, jwks_endpoint: JwksEndpoint, signer: Signer, other_signer: Signer
) -> None:
    app = create_app(ingest_settings(redis_url, jwks_endpoint.url, ingest_signature_failures=LIMIT))
    with serving(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        answers = [http.post("/webhooks/kinde", content=forged(signer, other_signer), headers=JWT) for _ in range(8)]
        assert [a.status_code for a in answers] == [401] * LIMIT + [429] * 3
        assert answers[-1].headers["retry-after"].isdigit()
        exposed = http.get("/metrics").text
    assert 'rolesync_ingest_webhooks_total{outcome="throttled",type="unverified"} 3.0' in exposed


@pytest.mark.parametrize("value", ["20", ""])
def test_the_limit_defaults_to_20_a_minute(value: str) -> None:
    from common.settings import Settings

    settings = Settings.from_env({"ROLESYNC_INGEST_SIGNATURE_FAILURES": value})
    assert (settings.ingest_signature_failures, settings.ingest_signature_window_s) == (20, 60.0)
