"""The overview chart's geometry (pure) and the per-minute counts it is drawn from (real Redis); the browser
tests' refusal to skip."""

from __future__ import annotations

import shutil

import pytest
import redis

from common import keys
from common.infra import minute_counts
from common.infra.minute_counts import ACCEPTED, CONVERGED, DEAD_LETTERS, WINDOW, Tally
from console import chart
from tests.console.browser import chromium


def test_bars_scale_to_the_series_peak_and_name_their_minute() -> None:
    drawn = chart.panel(ACCEPTED, [0, 2, 4])
    assert (drawn.total, drawn.peak) == (6, 4)
    assert [b.height for b in drawn.bars] == [0.0, chart.HEIGHT / 2, chart.HEIGHT]
    assert [b.y + b.height for b in drawn.bars] == [chart.HEIGHT] * 3  # standing on the axis
    assert [b.minutes_ago for b in drawn.bars] == [2, 1, 0]
    assert chart.panel(DEAD_LETTERS, [0] * WINDOW).peak == 0  # an empty hour draws no bar, divides by nothing


def test_counts_land_in_their_minute_expire_and_read_back_oldest_first(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    now = 1_800_000_000.0
    minute_counts.count(client, CONVERGED, now)
    minute_counts.count(client, CONVERGED, now - 60)
    minute_counts.count(client, CONVERGED, now - 3600)  # an hour ago: outside the window
    assert 0 < client.ttl(keys.minute_counts(minute_counts.minute_of(now))) <= minute_counts.KEEP_S
    found = minute_counts.last_hour(client, now)
    assert found[CONVERGED][-2:] == [1, 1]
    assert sum(found[CONVERGED]) == 2
    assert len(found[ACCEPTED]) == WINDOW


def test_the_ingest_tally_sums_per_minute_and_starts_again_after_a_take() -> None:
    tally = Tally()
    for at in (120.0, 130.0, 185.0):
        tally.add(ACCEPTED, at)
    assert sorted(tally.take()) == [(ACCEPTED, 120.0, 2), (ACCEPTED, 180.0, 1)]
    assert tally.take() == []


def test_a_machine_without_chromium_fails_the_browser_tests_saying_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Never a silent skip: the browser tests fail, naming the package to install."""
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y chromium"), chromium():
        pass
