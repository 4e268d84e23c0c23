"""The Kinde adapter over a real httpx.Client with MockTransport, its token and gate on real Redis."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis

from common import keys
from common.errors import ForbiddenError, PermanentError, RateLimitedError, RetryableError
from common.infra.connections import redis_client
from common.settings import Secret, Settings
from worker.kinde.api import HttpxKindeApi
from worker.kinde.ratelimit import RedisKindeGate, bucket_shape
from worker.kinde.token import shared_tokens

BASE = "https://acme.kinde.com"
Handler = Callable[[httpx.Request], httpx.Response]


class Tenant:
    """Answers the token endpoint and delegates everything else to `api`; counts what it saw."""

    def __init__(self, api: Handler) -> None:
        self.api = api
        self.tokens_issued = 0
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/token":
            self.tokens_issued += 1
            return httpx.Response(200, json={"access_token": f"tok{self.tokens_issued}", "expires_in": 86400})
        self.requests.append(request)
        return self.api(request)


def make_api(redis_url: str, tenant: Tenant, rps: float = 1000.0) -> tuple[HttpxKindeApi, redis.Redis]:
    settings = Settings(
        kinde_domain=BASE, kinde_client_id="id", kinde_client_secret=Secret("s3cret"), redis_url=Secret(redis_url)
    )
    client = redis_client(settings)
    http = httpx.Client(transport=httpx.MockTransport(tenant))
    tokens = shared_tokens(client, http, settings, on_fetch=lambda: None)
    return HttpxKindeApi(http, BASE, tokens, RedisKindeGate(client, rps)), client


def ok(**body: Any) -> httpx.Response:
    return httpx.Response(200, json={"code": "OK", "message": "Success", **body})


def test_pages_follow_next_token_and_has_more(redis_url: str) -> None:
    def api(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/roles":
            token = request.url.params.get("next_token")
            return (
                ok(roles=[{"id": "2", "key": "b"}], next_token=None)
                if token
                else ok(roles=[{"id": "1", "key": "a"}], next_token="p2")
            )
        after = request.url.params.get("starting_after")
        return (
            ok(agreements=[{"id": "ag2", "plan_code": "y"}], has_more=False)
            if after == "ag1"
            else ok(agreements=[{"id": "ag1", "plan_code": "x"}], has_more=True)
        )

    kinde, _ = make_api(redis_url, Tenant(api))
    assert [r["key"] for r in kinde.roles()] == ["a", "b"]
    assert [a["plan_code"] for a in kinde.agreements("customer_1")] == ["x", "y"]


def test_one_token_serves_every_process_and_401_refreshes_it_once(redis_url: str) -> None:
    seen: list[str] = []

    def api(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(401) if request.headers["authorization"] == "Bearer tok1" else ok(roles=[])

    tenant = Tenant(api)
    first, _ = make_api(redis_url, tenant)
    second, _ = make_api(redis_url, tenant)  # another process: same Redis, its own httpx client
    first.roles()
    second.roles()
    assert seen == ["Bearer tok1", "Bearer tok2", "Bearer tok2"]
    assert tenant.tokens_issued == 2


def test_a_401_after_a_fresh_token_is_not_retried_forever(redis_url: str) -> None:
    tenant = Tenant(lambda request: httpx.Response(401, json={"errors": [{"code": "UNAUTHORIZED", "message": "bad"}]}))
    kinde, _ = make_api(redis_url, tenant)
    with pytest.raises(PermanentError) as caught:
        kinde.roles()
    assert caught.value.reason == "kinde_UNAUTHORIZED"
    assert len(tenant.requests) == 2


def test_a_429_sets_the_shared_cool_down_so_only_a_probe_calls_until_it_ends(redis_url: str) -> None:
    tenant = Tenant(lambda request: httpx.Response(429, headers={"RateLimit-Reset": "30"}))
    kinde, client = make_api(redis_url, tenant)
    other, _ = make_api(redis_url, tenant)
    with pytest.raises(RateLimitedError):
        kinde.roles()
    with pytest.raises(RateLimitedError) as probed:
        other.agreements("customer_1")  # the fleet's one probe: Kinde still says 429
    assert 28 < (probed.value.retry_after_s or 0) <= 30
    assert len(tenant.requests) == 2
    assert 300 < client.pttl(keys.KINDE_PROBE) <= 400  # the next probe waits a doubled gap
    lowered, climb_from, _ = str(client.get(keys.KINDE_RPS_CAP)).split(":")
    assert lowered == "500.000"  # a tenth for the first 429, half for the probe's: the limit is really spent
    assert float(climb_from) > time.time() + 25


def test_probes_into_a_lasting_limit_space_out_so_few_calls_reach_kinde(redis_url: str) -> None:
    tenant = Tenant(lambda request: httpx.Response(429, headers={"RateLimit-Reset": "30"}))
    kinde, _ = make_api(redis_url, tenant)
    others = [make_api(redis_url, tenant)[0] for _ in range(4)]
    with pytest.raises(RateLimitedError):
        kinde.roles()
    began = time.monotonic()
    while time.monotonic() - began < 3.0:  # each call waits up to 0.8 s: the last ends by ~3.8 s
        with pytest.raises(RateLimitedError) as caught:
            others[len(tenant.requests) % 4].agreements("customer_1")
        assert 26 < (caught.value.retry_after_s or 0) <= 30
    # probes at ~0, 0.4, 1.2 and 2.8 s (each 429 doubles the gap: 0.4, 0.8, 1.6, 3.2 s); a busy box only
    # delays them. A fixed 0.2 s gap would have let ~19 through.
    assert 3 <= len(tenant.requests) - 1 <= 4


def test_a_probe_kinde_answers_ends_the_cool_down_for_every_process(redis_url: str) -> None:
    answers = iter([httpx.Response(429, headers={"RateLimit-Reset": "30"})])
    tenant = Tenant(lambda request: next(answers, httpx.Response(200, json={"roles": []})))
    kinde, client = make_api(redis_url, tenant)
    other, _ = make_api(redis_url, tenant)
    with pytest.raises(RateLimitedError):
        kinde.roles()
    assert other.roles() == []  # the probe: answered 200
    assert client.get(keys.KINDE_COOLDOWN_UNTIL) is None
    assert [kinde.roles(), other.roles()] == [[], []]  # everyone calls again, 29 s before RateLimit-Reset
    assert len(tenant.requests) == 4


def test_403_on_a_fresh_token_is_forbidden_and_names_the_scope(redis_url: str) -> None:
    body = {"errors": [{"code": "SCOPE_MISSING", "message": "missing the required scope: read:billing_agreements"}]}
    tenant = Tenant(lambda request: httpx.Response(403, json=body))
    kinde, _ = make_api(redis_url, tenant)
    with pytest.raises(ForbiddenError) as caught:
        kinde.agreements("customer_1")
    assert (caught.value.reason, caught.value.scope) == ("kinde_forbidden", "read:billing_agreements")
    assert (tenant.tokens_issued, len(tenant.requests)) == (1, 1)  # the token was new: no refetch


def test_already_done_writes_are_success(redis_url: str) -> None:
    def api(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            return httpx.Response(404, json={"errors": {"code": "ROUTE_NOT_FOUND", "message": "gone"}})
        if request.url.path.endswith("/kp_1/roles"):
            return httpx.Response(409, json={"errors": [{"code": "CONFLICT", "message": "has it"}]})
        return httpx.Response(400, json={"errors": [{"code": "ROLE_ALREADY_ADDED", "message": "has it"}]})

    kinde, _ = make_api(redis_url, Tenant(api))
    kinde.add_role("org_a", "kp_1", "r1")
    kinde.add_role("org_a", "kp_2", "r1")
    with pytest.raises(PermanentError):  # a 404 that is not about the role is not "already done"
        kinde.remove_role("org_a", "kp_1", "r1")


def test_a_role_post_sends_the_role_id_and_a_delete_404_is_already_done(redis_url: str) -> None:
    tenant = Tenant(lambda request: httpx.Response(404) if request.method == "DELETE" else ok())
    kinde, _ = make_api(redis_url, tenant)
    kinde.add_role("org_a", "kp_1", "r1")
    kinde.remove_role("org_a", "kp_1", "r1")
    post = tenant.requests[0]
    assert post.url.path == "/api/v1/organizations/org_a/users/kp_1/roles"
    assert json.loads(post.content) == {"role_id": "r1"}


@pytest.mark.parametrize(
    ("exc", "reason"),
    [(httpx.ReadTimeout("slow"), "kinde_timeout"), (httpx.ConnectError("refused"), "kinde_unreachable")],
)
def test_transport_failures_are_retryable(redis_url: str, exc: Exception, reason: str) -> None:
    def api(request: httpx.Request) -> httpx.Response:
        raise exc

    kinde, _ = make_api(redis_url, Tenant(api))
    with pytest.raises(RetryableError) as caught:
        kinde.roles()
    assert caught.value.reason == reason


def test_the_token_and_secret_never_appear_in_errors(redis_url: str) -> None:
    tenant = Tenant(lambda request: httpx.Response(400, json={"errors": [{"code": "BAD", "message": "x"}]}))
    kinde, _ = make_api(redis_url, tenant)
    with pytest.raises(PermanentError) as caught:
        kinde.roles()
    assert "tok1" not in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_the_shared_bucket_holds_the_rate_across_clients(redis_url: str) -> None:
    import time

    tenant = Tenant(lambda request: ok(roles=[]))
    apis = [make_api(redis_url, tenant, rps=20.0)[0] for _ in range(3)]
    start = time.monotonic()
    for n in range(30):
        apis[n % 3].roles()
    elapsed = time.monotonic() - start
    assert elapsed >= 30 / 20 - 0.2  # 30 calls at 20/s shared by three clients take ≥ ~1.4 s
    assert bucket_shape(20.0) == (2, 100)
    assert bucket_shape(15.0) == (1, 67)
    assert bucket_shape(0.5) == (1, 2000)
