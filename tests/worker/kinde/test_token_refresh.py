"""A rejected M2M token against the sandbox over HTTP: refetched once when cached, forbidden when fresh.

Kinde's spec answers 403 for invalid credentials and 401 in practice, so both must drop the shared
token and retry; only a 403 on a token issued moments ago means a scope is missing.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import redis

from common import keys
from common.errors import ForbiddenError
from common.infra.connections import redis_client
from common.settings import Secret, Settings
from sandbox.tokens import ALL_SCOPES
from tests.sandbox_fixture import RunningSandbox, running_sandbox
from worker.kinde.api import HttpxKindeApi
from worker.kinde.ratelimit import RedisKindeGate
from worker.kinde.token import FRESH_S, shared_tokens

AGREEMENTS = "read:billing_agreements"


@pytest.fixture(scope="module")
def sandbox_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    with running_sandbox(tmp_path_factory.mktemp("sandbox")) as running:
        yield running


@pytest.fixture
def sandbox(sandbox_process: RunningSandbox) -> RunningSandbox:
    sandbox_process.client.reset()
    return sandbox_process


def make_api(redis_url: str, sandbox: RunningSandbox, *, fresh_s: float = FRESH_S) -> tuple[HttpxKindeApi, redis.Redis]:
    settings = Settings(
        kinde_domain=sandbox.url,
        kinde_client_id=sandbox.client_id,
        kinde_client_secret=Secret(sandbox.client_secret),
        redis_url=Secret(redis_url),
    )
    client = redis_client(settings)
    http = httpx.Client(timeout=10)
    tokens = shared_tokens(client, http, settings, on_fetch=lambda: None, fresh_s=fresh_s)
    return HttpxKindeApi(http, sandbox.url, tokens, RedisKindeGate(client, 1000.0)), client


def statuses(sandbox: RunningSandbox, path: str) -> list[int]:
    return [int(c["status"]) for c in sandbox.client.calls() if c["path"] == path]


@pytest.mark.parametrize("status", [401, 403])
def test_a_revoked_cached_token_is_dropped_and_refetched_once(
    redis_url: str, sandbox: RunningSandbox, status: int
) -> None:
    kinde, client = make_api(redis_url, sandbox, fresh_s=0.0)  # the cached token counts as old at once
    kinde.roles()
    cached = client.get(keys.KINDE_TOKEN)
    sandbox.client.set_switches(invalid_token_status=status)
    sandbox.client.expire_tokens()
    fetched = sandbox.client.token_requests()

    assert kinde.roles()
    assert sandbox.client.token_requests() == fetched + 1
    assert statuses(sandbox, "/api/v1/roles") == [200, status, 200]
    assert client.get(keys.KINDE_TOKEN) != cached  # the fleet's shared copy was replaced, not only ours


def test_redis_holds_the_token_sealed_never_in_the_clear(redis_url: str, sandbox: RunningSandbox) -> None:
    """A Redis reader without the client secret gets nothing usable: no token, no part of one."""
    kinde, client = make_api(redis_url, sandbox)
    kinde.roles()
    issued = sandbox.client.issued_tokens()[-1]
    raw = client.get(keys.KINDE_TOKEN)

    assert raw
    assert raw.startswith("v1.")
    assert issued not in raw
    assert issued[:16] not in raw
    assert issued[-16:] not in raw
    assert "token" not in raw
    assert "refresh_at" not in raw


@pytest.mark.parametrize("stored", ['{"token": "plain-from-an-older-release", "refresh_at": 9e9, "issued_at": 0}',
                                    "v1.sealed-with-a-rotated-secret"])  # fmt: skip
def test_a_value_that_does_not_open_counts_as_absent_and_a_new_token_is_fetched(
    redis_url: str, sandbox: RunningSandbox, stored: str
) -> None:
    kinde, client = make_api(redis_url, sandbox)
    client.set(keys.KINDE_TOKEN, stored)

    assert kinde.roles()
    assert sandbox.client.token_requests() == 1
    assert client.get(keys.KINDE_TOKEN) != stored


def test_a_403_on_a_token_fetched_moments_ago_is_forbidden_and_names_the_scope(
    redis_url: str, sandbox: RunningSandbox
) -> None:
    sandbox.client.set_scopes([s for s in ALL_SCOPES if s != AGREEMENTS])
    kinde, _ = make_api(redis_url, sandbox)

    with pytest.raises(ForbiddenError) as caught:
        kinde.agreements("customer_x")
    assert (caught.value.reason, caught.value.scope) == ("kinde_forbidden", AGREEMENTS)
    assert caught.value.endpoint == "GET /billing/agreements"
    assert sandbox.client.token_requests() == 1  # no refetch: a token this new already has every granted scope
    assert statuses(sandbox, "/api/v1/billing/agreements") == [403]


def test_a_403_on_an_old_token_refetches_once_then_is_forbidden(redis_url: str, sandbox: RunningSandbox) -> None:
    kinde, _ = make_api(redis_url, sandbox, fresh_s=0.0)
    kinde.roles()
    sandbox.client.set_scopes([s for s in ALL_SCOPES if s != AGREEMENTS])

    with pytest.raises(ForbiddenError) as caught:
        kinde.agreements("customer_x")
    assert caught.value.scope == AGREEMENTS
    assert sandbox.client.token_requests() == 2
    assert statuses(sandbox, "/api/v1/billing/agreements") == [403, 403]


def test_the_scope_comes_from_the_endpoint_when_kindes_403_names_none(redis_url: str, sandbox: RunningSandbox) -> None:
    kinde, _ = make_api(redis_url, sandbox)
    kinde.roles()  # a token issued now: its 403 is not a stale-token 403
    sandbox.client.set_switches(invalid_token_status=403)
    sandbox.client.expire_tokens()

    with pytest.raises(ForbiddenError) as caught:
        kinde.user_roles("org_x", "kp_x")
    assert caught.value.scope == "read:organization_user_roles"
    assert "INVALID_CREDENTIALS" in str(caught.value)
