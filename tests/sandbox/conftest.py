"""One real sandbox process per test module, reset before each test; a token-bearing httpx client."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.sandbox.receiver import Receiver, running_receiver
from tests.sandbox_fixture import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, RunningSandbox, running_sandbox


@pytest.fixture(scope="module")
def sandbox_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    with running_sandbox(tmp_path_factory.mktemp("sandbox"), time_scale=1000.0) as running:
        yield running


@pytest.fixture
def sandbox(sandbox_process: RunningSandbox) -> RunningSandbox:
    sandbox_process.client.reset()
    sandbox_process.client.set_webhooks(url="", variant="mix", paused=False, drop_rate=0.0, duplicate_rate=0.0)
    return sandbox_process


def fetch_token(base_url: str, **overrides: str) -> httpx.Response:
    form = {
        "grant_type": "client_credentials",
        "client_id": SANDBOX_CLIENT_ID,
        "client_secret": SANDBOX_CLIENT_SECRET,
        "audience": f"{base_url}/api",
        **overrides,
    }
    return httpx.post(f"{base_url}/oauth2/token", data=form)


@pytest.fixture
def kinde(sandbox: RunningSandbox) -> Iterator[httpx.Client]:
    """An httpx client speaking to the sandbox's Management API the way a Kinde client would."""
    token = fetch_token(sandbox.url).json()["access_token"]
    with httpx.Client(base_url=sandbox.url, headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


@pytest.fixture
def receiver(sandbox: RunningSandbox) -> Iterator[Receiver]:
    with running_receiver() as running:
        sandbox.set_webhook_url(running.url)
        yield running
