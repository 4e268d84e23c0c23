"""The one retry predicate: what each kind of failure costs and when it becomes a dead letter (pure)."""

from __future__ import annotations

import pytest

from common.errors import ConfigError, ContendedError, PermanentError, RateLimitedError, RetryableError
from worker.runtime.retry_policy import (
    UNEXPECTED_TRIES,
    Budget,
    GiveUp,
    RetryIn,
    decide,
    patiently,
    retry_horizon_s,
    summarise,
)

BUDGET = Budget(max_retries=3, max_backoff_ms=3_600_000)


def _run(errors: list[BaseException], budget: Budget = BUDGET) -> list[RetryIn | GiveUp]:
    """Feed each failure to `decide` as the middleware does, carrying the counter forward."""
    failures, decisions = 0, []
    for error in errors:
        decision = decide(error, failures, budget)
        decisions.append(decision)
        failures = decision.failures if isinstance(decision, RetryIn) else failures
    return decisions


def test_rate_limits_and_contention_wait_their_hint_without_spending_the_failure_budget() -> None:
    decisions = _run([RateLimitedError("429", retry_after_s=4.0), ContendedError("busy", retry_after_s=0.2)] * 50)
    assert all(isinstance(d, RetryIn) and d.failures == 0 for d in decisions)
    first = decisions[0]
    assert isinstance(first, RetryIn)
    assert 4000 <= first.delay_ms <= 4800


def test_an_outage_backs_off_exponentially_for_its_budget_then_is_retries_exhausted() -> None:
    decisions = _run([RetryableError("503")] * 3 + [RetryableError("503 again")])
    delays = [d.delay_ms for d in decisions if isinstance(d, RetryIn)]
    assert len(delays) == 3
    assert 1000 <= delays[0] <= 2000
    assert 4000 <= delays[2] <= 8000
    final = decisions[-1]
    assert isinstance(final, GiveUp)
    assert final.reason == "retries_exhausted"
    assert "gave up after 4 failures" in final.last_error
    assert "503 again" in final.last_error


def test_a_permanent_error_gives_up_at_once_with_its_own_reason() -> None:
    assert decide(PermanentError("no", reason="kinde_NOPE"), 0, BUDGET) == GiveUp("kinde_NOPE", "PermanentError: no")


@pytest.mark.parametrize("error", [KeyError("plan"), TypeError("bad"), ConfigError("plans.toml")])
def test_anything_unforeseen_gets_a_few_tries_then_is_unexpected_error(error: Exception) -> None:
    decisions = _run([error] * UNEXPECTED_TRIES)
    assert [type(d) for d in decisions] == [RetryIn] * (UNEXPECTED_TRIES - 1) + [GiveUp]
    final = decisions[-1]
    assert isinstance(final, GiveUp)
    assert final.reason == "unexpected_error"
    assert final.last_error.startswith(type(error).__name__)


def test_the_budget_is_one_counter_so_a_bug_after_a_long_outage_fails_at_once() -> None:
    final = _run([RetryableError("503")] * 3 + [KeyError("bug")], Budget(max_retries=40, max_backoff_ms=60_000))[-1]
    assert isinstance(final, GiveUp)
    assert final.reason == "unexpected_error"


def test_the_summary_names_the_type_the_message_and_the_innermost_frame() -> None:
    def innermost() -> None:
        {}["plan_code"]  # the bug under test

    try:
        innermost()
    except KeyError as exc:
        summary = summarise(exc)
    assert summary.startswith("KeyError: 'plan_code' at runtime/test_retry_policy.py:")
    assert summary.endswith(" in innermost")
    assert "\n" not in summary


def test_the_default_budget_rides_out_a_multi_hour_outage() -> None:
    hours = retry_horizon_s(40, min_backoff_ms=1000, max_backoff_ms=30 * 60 * 1000) / 3600
    assert 8 < hours < 16


def test_patiently_waits_out_rate_limits_only() -> None:
    calls: list[str] = []

    def flaky(kind: str) -> str:
        calls.append(kind)
        if len(calls) < 3:
            raise RateLimitedError("429", retry_after_s=0.01)
        if kind == "bug":
            raise KeyError(kind)
        return "done"

    assert patiently(flaky)("fine") == "done"
    assert len(calls) == 3
    with pytest.raises(KeyError):
        patiently(flaky)("bug")
    assert len(calls) == 4  # a bug is not retried in place
