"""Rate limit (429 + RateLimit-Reset) and injected faults, per endpoint or global, set at run time."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.procs import wait_until
from tests.sandbox_fixture import RunningSandbox


def test_token_bucket_answers_429_with_ratelimit_reset(sandbox: RunningSandbox, kinde: httpx.Client) -> None:
    sandbox.client.set_rate_limit(rate=1, burst=3)

    statuses = [kinde.get("/api/v1/roles") for _ in range(5)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429, 429]
    throttled = statuses[-1]
    assert throttled.headers["RateLimit-Reset"] == "1"
    assert throttled.json()["errors"][0]["code"] == "TOO_MANY_REQUESTS"
    assert [c["status"] for c in sandbox.client.calls()][-2:] == [429, 429]


def test_the_bucket_refills_after_ratelimit_reset(sandbox: RunningSandbox, kinde: httpx.Client) -> None:
    sandbox.client.set_rate_limit(rate=20, burst=1)
    assert kinde.get("/api/v1/roles").status_code == 200
    assert kinde.get("/api/v1/roles").status_code == 429
    wait_until(lambda: kinde.get("/api/v1/roles").status_code == 200, timeout=5, what="a refilled token (50 ms)")


@pytest.mark.parametrize("status", [500, 502, 503])
def test_an_endpoint_fault_fails_only_that_endpoint(sandbox: RunningSandbox, kinde: httpx.Client, status: int) -> None:
    sandbox.client.set_faults("GET /api/v1/billing/*", **{f"error_{status}": 1.0})

    failed = kinde.get("/api/v1/billing/agreements", params={"customer_id": "c"})
    assert failed.status_code == status
    assert "errors" in failed.json()
    assert kinde.get("/api/v1/roles").status_code == 200


def test_a_random_429_carries_rate_limit_reset_and_is_marked_in_the_call_log(
    sandbox: RunningSandbox, kinde: httpx.Client
) -> None:
    sandbox.client.set_faults("GET /api/v1/roles", error_429=0.5, reset_s=3)
    answers = [kinde.get("/api/v1/roles") for _ in range(200)]
    throttled = [a for a in answers if a.status_code == 429]
    assert 50 < len(throttled) < 150  # about half, at random (binomial, p < 1e-12 outside)
    assert {a.headers["RateLimit-Reset"] for a in throttled} == {"3"}
    assert {a.status_code for a in answers} == {200, 429}
    logged = [c for c in sandbox.client.calls() if c["path"] == "/api/v1/roles"][-200:]
    assert [c.get("fault") for c in logged] == [("429" if a.status_code == 429 else None) for a in answers]


def test_a_connection_reset_is_a_transport_error(sandbox: RunningSandbox, kinde: httpx.Client) -> None:
    sandbox.client.set_faults("*", reset_rate=1.0)
    with pytest.raises(httpx.TransportError):
        kinde.get("/api/v1/roles")


def test_a_hang_outlasts_the_client_timeout(sandbox: RunningSandbox, kinde: httpx.Client) -> None:
    sandbox.client.set_faults("GET /api/v1/roles", hang_rate=1.0, hang_s=2.0)
    with pytest.raises(httpx.ReadTimeout):
        kinde.get("/api/v1/roles", timeout=0.3)


def test_latency_delays_answers(sandbox: RunningSandbox, kinde: httpx.Client) -> None:
    sandbox.client.set_faults("*", latency_ms=150, jitter_ms=50)
    started = time.monotonic()
    assert kinde.get("/api/v1/roles").status_code == 200
    assert 0.15 <= time.monotonic() - started < 5.0  # upper bound only rules out a hang: CI boxes stall


def test_faults_can_be_removed_at_run_time(sandbox: RunningSandbox, kinde: httpx.Client) -> None:
    sandbox.client.set_faults("*", error_503=1.0)
    assert kinde.get("/api/v1/roles").status_code == 503
    sandbox.client.clear_faults()
    assert kinde.get("/api/v1/roles").status_code == 200


def test_token_endpoint_can_fail_too(sandbox: RunningSandbox) -> None:
    sandbox.client.set_faults("POST /oauth2/token", error_503=1.0)
    assert httpx.post(f"{sandbox.url}/oauth2/token", data={}).status_code == 503


def test_a_bad_fault_setting_is_refused_clearly(sandbox: RunningSandbox) -> None:
    response = httpx.post(f"{sandbox.url}/_sandbox/faults", json={"pattern": "*", "rule": {"error_999": 1}})
    assert response.status_code == 400
    assert "error_999" in response.json()["errors"][0]["message"]
