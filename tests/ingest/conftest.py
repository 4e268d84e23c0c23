"""Fixtures for the ingest: a real JWKS endpoint, real Redis (tests/conftest.py), the real app under uvicorn."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from common.settings import Secret, Settings
from ingest.app import create_app
from tests.ingest.servers import JwksEndpoint, serving
from tests.ingest.tokens import Signer, jwks


@pytest.fixture(scope="session")
def signer() -> Signer:
    return Signer()


@pytest.fixture(scope="session")
def other_signer() -> Signer:
    return Signer()


@pytest.fixture
def jwks_endpoint(signer: Signer) -> Iterator[JwksEndpoint]:
    endpoint = JwksEndpoint(document=jwks(signer))
    with serving(endpoint.app()) as url:
        endpoint.url = f"{url}/.well-known/jwks.json"
        yield endpoint


def ingest_settings(redis_url: str, jwks_url: str, **overrides: object) -> Settings:
    return Settings(
        kinde_domain="https://tenant.invalid",
        kinde_jwks_url=jwks_url,
        redis_url=Secret(redis_url),
        **overrides,  # type: ignore[arg-type]
    )


@pytest.fixture
def settings(redis_url: str, jwks_endpoint: JwksEndpoint) -> Settings:
    return ingest_settings(redis_url, jwks_endpoint.url)


@pytest.fixture
def ingest_url(settings: Settings) -> Iterator[str]:
    with serving(create_app(settings)) as url:
        yield url


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client
