"""Contract: the sandbox lists every access token it issued, so the secrets suite can grep for them."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.sandbox_fixture import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, running_sandbox

pytestmark = pytest.mark.integration  # a `rolesync sandbox` process


def _token(url: str) -> str:
    form = {"grant_type": "client_credentials", "client_id": SANDBOX_CLIENT_ID, "client_secret": SANDBOX_CLIENT_SECRET}
    form["audience"] = f"{url}/api"
    token: str = httpx.post(f"{url}/oauth2/token", data=form).json()["access_token"]
    return token


def test_sandbox_lists_every_issued_access_token_even_after_reset(tmp_path: Path) -> None:
    with running_sandbox(tmp_path) as sandbox:
        first, second = _token(sandbox.url), _token(sandbox.url)
        sandbox.client.reset()
        assert sandbox.client.issued_tokens() == [first, second]
