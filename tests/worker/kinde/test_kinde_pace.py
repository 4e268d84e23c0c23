"""The pace after a 429 (worker/kinde/pace.py), pure: multiplicative decrease, climb back, probe gaps."""

from __future__ import annotations

import pytest

from worker.kinde.pace import (
    BACKOFF,
    CLIMB_SHARE_PER_S,
    HARD_BACKOFF,
    MIN_RPS,
    PROBE_GAP_S,
    SLOW_CLIMB_SHARE_PER_S,
    CoolDown,
    Pace,
    hardened,
    lowered,
    relieved,
)

R = 50.0


def test_a_429_lowers_the_rate_once_and_the_climb_waits_for_the_cool_down_to_end() -> None:
    pace = lowered(None, R, now=100.0, reset_s=2.0)
    assert pace.rate(R, 100.0) == pytest.approx(R * BACKOFF)
    assert pace.rate(R, 102.0) == pytest.approx(R * BACKOFF)  # the cool-down ran until 102: no climb yet
    assert pace.rate(R, 102.2) == pytest.approx(R * BACKOFF + CLIMB_SHARE_PER_S * R * 0.2)
    assert pace.rate(R, 200.0) == R  # never above the configured rate


def test_a_probe_answered_starts_the_climb_at_once_instead_of_at_rate_limit_reset() -> None:
    pace = relieved(lowered(None, R, now=100.0, reset_s=60.0), now=100.1)
    assert pace is not None
    assert pace.rate(R, 100.5) == pytest.approx(R * BACKOFF + CLIMB_SHARE_PER_S * R * 0.4)
    assert pace.rate(R, 100.1 + (1 - BACKOFF) / CLIMB_SHARE_PER_S) == pytest.approx(R)
    assert relieved(None, 100.0) is None


def test_429s_in_a_row_lower_from_the_rate_reached_down_to_a_floor() -> None:
    pace = lowered(None, R, now=0.0, reset_s=0.0)
    pace = lowered(pace, R, now=0.1, reset_s=0.0)  # climbed 1.25 req/s in the 0.1 s between
    assert pace.rate(R, 0.1) == pytest.approx((R * BACKOFF + CLIMB_SHARE_PER_S * R * 0.1) * BACKOFF)
    for _ in range(200):
        pace = lowered(pace, R, now=1.0, reset_s=1.0)
    assert pace.rate(R, 1.0) == MIN_RPS


def test_a_second_429_in_the_cool_down_hardens_it_once_to_half_the_rate_climbing_slowly() -> None:
    pace = hardened(lowered(None, R, now=100.0, reset_s=1.0), R)
    assert pace is not None
    assert pace.rate(R, 101.0) == pytest.approx(R * HARD_BACKOFF)
    assert pace.rate(R, 102.0) == pytest.approx(R * HARD_BACKOFF + SLOW_CLIMB_SHARE_PER_S * R)
    assert hardened(None, R) is None
    assert Pace.decode(pace.encode()) == pace


def test_a_configured_rate_ten_times_the_limit_falls_to_it_in_a_few_hard_cool_downs() -> None:
    pace: Pace | None = None
    now, limit, cool_downs = 0.0, R / 10, 0
    while (pace.rate(R, now) if pace else R) > limit:
        pace = hardened(lowered(pace, R, now, reset_s=0.2), R)
        now, cool_downs = now + 0.2, cool_downs + 1
    assert cool_downs <= 4  # 50 → 25 → 12.5 → 6.3 → 3.1
    assert pace is not None
    assert now + (limit - pace.lowered) / pace.climb_per_s - now > 1.5  # then seconds, not a blink, to climb past it


def test_the_record_is_kept_until_the_rate_has_climbed_back() -> None:
    pace = lowered(None, R, now=10.0, reset_s=3.0)
    kept = pace.kept_s(R, 10.0)
    assert pace.rate(R, 10.0 + kept - 1) == pytest.approx(R)
    assert pace.rate(R, 10.0 + kept - 1.5) < R
    assert Pace.decode(pace.encode()) == pace


def test_probe_gaps_double_with_each_429_during_a_cool_down_and_stop_doubling() -> None:
    cooling = CoolDown(until=160.0)
    assert cooling.probe_gap_s() == PROBE_GAP_S
    struck = cooling.struck(now=100.0, reset_s=1.0)
    assert (struck.until, struck.probe_gap_s()) == (160.0, 2 * PROBE_GAP_S)  # a shorter reset never shortens it
    assert cooling.struck(now=200.0, reset_s=5.0).until == 205.0
    for _ in range(30):
        struck = struck.struck(now=100.0, reset_s=1.0)
    assert struck.probe_gap_s() == PROBE_GAP_S * 256
    assert (cooling.remaining(159.0), cooling.remaining(161.0)) == (1.0, 0.0)
    assert cooling.extended(now=158.0, reset_s=5.0) == CoolDown(163.0, 0)  # a call in flight: no strike


def test_old_and_unreadable_records_decode_safely() -> None:
    assert Pace.decode("500.000").rate(R, 0.0) == R  # type: ignore[union-attr]  # the old cap format: climbed back
    assert (Pace.decode("junk"), Pace.decode(None)) == (None, None)
    assert CoolDown.decode("1700000000.5") == CoolDown(1700000000.5, 0)
    assert CoolDown.decode(CoolDown(5.0, 3).encode()) == CoolDown(5.0, 3)
    assert CoolDown.decode("x:y") is None
