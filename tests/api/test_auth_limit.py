"""Failed authentications are limited per client address (api/auth_limit.py), through the real app under uvicorn.

The client address comes from `X-Forwarded-For`, which uvicorn honours from loopback by default (as it
would from an ingress listed in FORWARDED_ALLOW_IPS): each test speaks as several addresses.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import httpx

from api.app import create_app
from api.guard_store import GuardStore
from api.reader import UserView
from common.infra.failure_limit import FailureLimiter
from common.settings import Settings
from tests.ingest.servers import serving

KEY, SECRET = "ops-Jt5wQ9zL2xVk7Rm4Pc8Hn3Fb", "workflow-Xq7vR2mK9pLs4Tz8Wn3cYb6H"
GUESSER, OTHER = "203.0.113.5", "198.51.100.7"


class NobodyReader:
    """Knows no one: a request that passes authentication gets 404, one that does not 401."""

    async def user(self, user_id: str) -> UserView | None:
        return None

    async def customer(self, customer_id: str) -> dict[str, Any] | None:
        return None

    async def history(self, customer_id: str, limit: int = 0) -> list[dict[str, Any]]:
        return []

    async def ping(self) -> None:
        return None

    async def data_state(self) -> str:
        return "ok"


@contextmanager
def api(failures: int = 3, window_s: float = 60.0) -> Iterator[httpx.Client]:
    env = {
        "ROLESYNC_API_KEYS": f"ops:{KEY}",
        "ROLESYNC_WORKFLOW_SECRET": SECRET,
        "ROLESYNC_API_AUTH_FAILURES": str(failures),
        "ROLESYNC_API_AUTH_WINDOW_S": str(window_s),
    }
    app = create_app(Settings.from_env(env), reader=NobodyReader(), guard_store=cast(GuardStore, object()))
    with serving(app) as url, httpx.Client(base_url=url, timeout=10.0) as client:
        yield client


def get(client: httpx.Client, address: str, key: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}", "X-Forwarded-For": address}
    return client.get("/v1/customers/customer_1", headers=headers)


def metric(client: httpx.Client, name: str, surface: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f'{name}_total{{surface="{surface}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_n_failed_keys_from_one_address_get_429_with_retry_after_and_other_addresses_keep_working() -> None:
    with api(failures=3) as client:
        assert [get(client, GUESSER, "wrong-key-Zm4Xq8Lr2Vt6").status_code for _ in range(3)] == [401, 401, 401]
        refused = get(client, GUESSER, KEY)  # even the right key: a blocked guesser learns nothing
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert refused.json()["error"]["code"] == "too_many_failed_authentications"
        assert get(client, OTHER, KEY).status_code == 404  # authenticated: the customer is unknown
        assert get(client, OTHER, "wrong-key-Zm4Xq8Lr2Vt6").status_code == 401
        assert get(client, OTHER, KEY).status_code == 404
        assert client.get("/healthz", headers={"X-Forwarded-For": GUESSER}).status_code == 200
        assert metric(client, "rolesync_api_auth_failures", "api_key") == 4
        assert metric(client, "rolesync_api_auth_throttled", "api_key") == 1


def test_a_wrong_workflow_secret_counts_and_blocks_the_address_on_every_route() -> None:
    with api(failures=2) as client:
        headers = {"x-rolesync-workflow-secret": "wrong-secret-Pq3Wm7Kz", "X-Forwarded-For": GUESSER}
        answers = [client.post("/v1/plan-selection", json={}, headers=headers).status_code for _ in range(3)]
        assert answers == [401, 401, 429]
        assert get(client, GUESSER, KEY).status_code == 429
        assert metric(client, "rolesync_api_auth_failures", "workflow_secret") == 2
        assert metric(client, "rolesync_api_auth_throttled", "workflow_secret") == 1


def test_a_valid_key_without_the_scope_is_not_a_failure_and_zero_turns_the_limit_off() -> None:
    with api(failures=1) as client:
        headers = {"Authorization": f"Bearer {KEY}", "X-Forwarded-For": GUESSER}
        assert client.put("/v1/customers/c/usage/seats", json={}, headers=headers).status_code == 403
        assert get(client, GUESSER, KEY).status_code == 404
    with api(failures=0) as client:
        assert {get(client, GUESSER, "wrong-key-Zm4Xq8Lr2Vt6").status_code for _ in range(5)} == {401}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_window_slides_and_retry_after_is_when_the_oldest_failure_leaves_it() -> None:
    clock = Clock()
    limiter = FailureLimiter(2, 60.0, clock=clock)
    limiter.failed("a")
    clock.now += 10
    limiter.failed("a")
    assert limiter.retry_after("a") == 50
    assert limiter.retry_after("b") is None
    clock.now += 50
    assert limiter.retry_after("a") is None  # the first failure left the window: one more try
    limiter.failed("a")
    assert limiter.retry_after("a") == 10  # blocked until the second failure (at +10) leaves the window
    clock.now += 200
    assert limiter.retry_after("a") is None
    assert limiter.tracked() == 0


def test_memory_is_bounded_the_least_recently_failing_address_dropped_first() -> None:
    count = 5
    limiter = FailureLimiter(1, 60.0, max_addresses=count, clock=Clock())
    for n in range(count + 2):
        limiter.failed(f"10.0.0.{n}")
    assert limiter.tracked() == count
    assert limiter.retry_after("10.0.0.0") is None
    assert limiter.retry_after(f"10.0.0.{count + 1}") is not None


def test_settings_default_to_20_failures_a_minute() -> None:
    found = Settings.from_env({})
    assert (found.api_auth_failures, found.api_auth_window_s) == (20, 60.0)
