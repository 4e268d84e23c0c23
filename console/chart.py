"""The overview's chart of the last hour, per minute, as geometry for server-side SVG (no script, no library).

Pure: counts in, one `Panel` per series out (bars scaled to the series' own maximum), drawn by the
overview template as `<svg>` rectangles.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.infra.minute_counts import ACCEPTED, CONVERGED, DEAD_LETTERS

WIDTH, HEIGHT = 600, 80
TITLES = {ACCEPTED: "webhooks accepted", CONVERGED: "passes converged", DEAD_LETTERS: "dead letters written"}


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    count: int
    minutes_ago: int


@dataclass(frozen=True)
class Panel:
    name: str
    title: str
    total: int
    peak: int
    bars: list[Bar]


def panels(series: dict[str, list[int]]) -> list[Panel]:
    return [panel(name, series.get(name, [])) for name in TITLES]


def panel(name: str, counts: list[int]) -> Panel:
    peak, slot = max(counts, default=0), WIDTH / max(1, len(counts))
    bars = [_bar(i, c, peak, slot, len(counts)) for i, c in enumerate(counts)]
    return Panel(name, TITLES[name], sum(counts), peak, bars)


def _bar(i: int, count: int, peak: int, slot: float, minutes: int) -> Bar:
    height = _height(count, peak)
    return Bar(round(i * slot, 1), round(HEIGHT - height, 1), round(slot * 0.8, 1), round(height, 1), count,
               minutes - 1 - i)  # fmt: skip


def _height(count: int, peak: int) -> float:
    return HEIGHT * count / peak if peak else 0.0
