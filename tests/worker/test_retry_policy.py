"""Classification of Kinde's answers and the retry decisions built on it (pure functions)."""

from __future__ import annotations

import dramatiq
import pytest

from common.errors import ContendedError, ForbiddenError, PermanentError, RateLimitedError, RetryableError
from worker.retry_policy import classify, error_codes, retry_after_s, retry_horizon_s
from worker.retrying import FAILURES, RetriesExhaustedError, next_step, retry_when

SCOPE_BODY = {
    "errors": [{"code": "SCOPE_MISSING", "message": "The access token is missing the required scope: read:users"}]
}


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_server_errors_and_timeouts_are_retryable(status: int) -> None:
    error = classify(status, {}, None, endpoint="GET /roles")
    assert type(error) is RetryableError


def test_429_carries_the_wait_from_ratelimit_reset() -> None:
    error = classify(429, {"ratelimit-reset": "7"}, None, endpoint="GET /roles")
    assert isinstance(error, RateLimitedError)
    assert error.retry_after_s == 7.0


@pytest.mark.parametrize(
    ("headers", "wait"), [({"retry-after": "3"}, 3.0), ({}, 1.0), ({"ratelimit-reset": "soon"}, 1.0)]
)
def test_429_tolerates_retry_after_or_no_header(headers: dict[str, str], wait: float) -> None:
    assert retry_after_s(headers) == wait


def test_403_is_forbidden_naming_the_scope_from_the_body() -> None:
    error = classify(403, {}, SCOPE_BODY, endpoint="GET /roles")
    assert isinstance(error, ForbiddenError)
    assert (error.reason, error.scope, error.endpoint) == ("kinde_forbidden", "read:users", "GET /roles")


def test_403_without_a_scope_takes_the_endpoints_and_keeps_the_code() -> None:
    body = {"errors": [{"code": "INVALID_CREDENTIALS", "message": "Invalid credentials used to access API"}]}
    error = classify(403, {}, body, endpoint="GET /billing/agreements")
    assert isinstance(error, ForbiddenError)
    assert error.scope == "read:billing_agreements"
    assert "INVALID_CREDENTIALS" in str(error)


@pytest.mark.parametrize(
    "body",
    [
        {"errors": [{"code": "ROLE_NOT_FOUND", "message": "Role not found"}]},
        {"errors": {"code": "ROLE_NOT_FOUND", "message": "Route not found"}},
    ],
)
def test_other_4xx_are_permanent_with_the_code_whether_errors_is_a_list_or_an_object(body: object) -> None:
    error = classify(400, {}, body, endpoint="POST roles")
    assert isinstance(error, PermanentError)
    assert error.reason == "kinde_ROLE_NOT_FOUND"
    assert error_codes(body) == ["ROLE_NOT_FOUND"]


def test_a_4xx_without_a_body_names_the_status() -> None:
    error = classify(404, {}, None, endpoint="DELETE role")
    assert error is not None
    assert error.reason == "kinde_HTTP_404"


def test_success_is_no_error() -> None:
    assert classify(200, {}, {"code": "OK"}, endpoint="GET /roles") is None


def test_rate_limits_and_contention_retry_without_spending_the_failure_budget() -> None:
    options: dict[str, int] = {}
    step = next_step(RateLimitedError("429", retry_after_s=4.0), options, max_retries=3, max_backoff_ms=60_000)
    assert isinstance(step, dramatiq.Retry)
    assert 4000 <= step.delay <= 4800
    assert isinstance(
        next_step(ContendedError("busy", retry_after_s=0.2), options, max_retries=3, max_backoff_ms=1), dramatiq.Retry
    )
    assert FAILURES not in options


def test_failures_back_off_exponentially_then_exhaust() -> None:
    options: dict[str, int] = {}
    delays = []
    for _ in range(3):
        step = next_step(RetryableError("503"), options, max_retries=3, max_backoff_ms=3_600_000)
        assert isinstance(step, dramatiq.Retry)
        delays.append(step.delay)
    assert options[FAILURES] == 3
    assert 1000 <= delays[0] <= 2000
    assert 4000 <= delays[2] <= 8000
    final = next_step(RetryableError("503 again"), options, max_retries=3, max_backoff_ms=3_600_000)
    assert isinstance(final, RetriesExhaustedError)
    assert final.reason == "retries_exhausted"
    assert "503 again" in str(final)


def test_retry_when_always_allows_explicit_delays_and_bounds_the_rest() -> None:
    assert retry_when(500, dramatiq.Retry(delay=10), max_retries=3)
    assert retry_when(2, KeyError("bug"), max_retries=3)
    assert not retry_when(3, KeyError("bug"), max_retries=3)


def test_the_default_budget_rides_out_a_multi_hour_outage() -> None:
    hours = retry_horizon_s(40, min_backoff_ms=1000, max_backoff_ms=30 * 60 * 1000) / 3600
    assert 8 < hours < 16
