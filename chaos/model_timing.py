"""Where a model run's wall time goes: seconds and calls per kind of work, to shorten what a sequence waits for.

One `Timings` per pipe process (`TIMINGS`): the pipe's waits, resets, reconciles and oracle reads and the
machine's steps add to it; `python -m chaos model` prints each pipe's table at its end and merges them into
the report's figures (docs/reliability.md, "Throughput: where a sequence's time goes").
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Timings:
    seconds: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, seconds: float) -> None:
        self.seconds[kind] = self.seconds.get(kind, 0.0) + seconds
        self.calls[kind] = self.calls.get(kind, 0) + 1

    @contextmanager
    def timed(self, kind: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.add(kind, time.monotonic() - started)

    def clear(self) -> None:
        self.seconds.clear()
        self.calls.clear()

    def table(self, sequences: int) -> str:
        """Kinds by total seconds, with calls and seconds per sequence."""
        lines = [f"{'kind':<44} {'seconds':>9} {'calls':>7} {'s/sequence':>10}"]
        for kind, spent in sorted(self.seconds.items(), key=lambda kv: -kv[1]):
            lines.append(f"{kind:<44} {spent:>9.1f} {self.calls[kind]:>7} {spent / max(sequences, 1):>10.2f}")
        return "\n".join(lines)


def merged(found: Iterable[Timings]) -> Timings:
    total = Timings()
    for timings in found:
        for kind, spent in timings.seconds.items():
            total.seconds[kind] = total.seconds.get(kind, 0.0) + spent
            total.calls[kind] = total.calls.get(kind, 0) + timings.calls[kind]
    return total


TIMINGS = Timings()  # this process's pipe
