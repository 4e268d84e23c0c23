"""Per-minute counts of what the pipe did, for the console's chart of the last hour.

Webhooks accepted (the ingest), passes converged (the workers) and dead letters written (the
dead-letter store), one Redis hash per minute (`keys.minute_counts(minute)`) with a field per name,
expiring `KEEP_S` after its last count. Counting never fails the work it counts: a Redis error is
logged and the count dropped. The ingest adds its counts in memory and writes them once a second
(`Tally`), so a webhook costs no extra round trip.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any, Protocol

import redis
import structlog

from common import keys
from common.errors import RetryableError
from common.infra.connections import redis_errors

log = structlog.get_logger(__name__)
ACCEPTED, CONVERGED, DEAD_LETTERS = "webhooks_accepted", "passes_converged", "dead_letters_written"
NAMES = (ACCEPTED, CONVERGED, DEAD_LETTERS)
KEEP_S = 2 * 3600
WINDOW = 60  # minutes the chart shows


class Pipeline(Protocol):
    def hincrby(self, name: str, key: str, amount: int = 1) -> Any: ...

    def expire(self, name: str, time: int) -> Any: ...


def minute_of(at: float) -> int:
    return int(at // 60)


def add(pipe: Pipeline, name: str, at: float, by: int = 1) -> None:
    """Queue one count on a pipeline (sync or asyncio: the commands are the same)."""
    key = keys.minute_counts(minute_of(at))
    pipe.hincrby(key, name, by)
    pipe.expire(key, KEEP_S)


def count(client: redis.Redis, name: str, at: float | None = None) -> None:
    try:
        with redis_errors("counting for the chart"), client.pipeline(transaction=False) as pipe:
            add(pipe, name, time.time() if at is None else at)
            pipe.execute()
    except RetryableError as exc:
        log.warning("minute_count_dropped", name=name, error=str(exc))


def last_hour(client: redis.Redis, now: float) -> dict[str, list[int]]:
    """Per name, the counts of the last `WINDOW` minutes, oldest first (the current minute last)."""
    minutes = range(minute_of(now) - WINDOW + 1, minute_of(now) + 1)
    with redis_errors("reading the per-minute counts"), client.pipeline(transaction=False) as pipe:
        for minute in minutes:
            pipe.hgetall(keys.minute_counts(minute))
        found: list[dict[Any, Any]] = pipe.execute()
    rows = [{str(k): int(v) for k, v in row.items()} for row in found]
    return {name: [row.get(name, 0) for row in rows] for name in NAMES}


class Tally:
    """Counts kept in memory and written together by `flush` (the ingest calls it once a second)."""

    def __init__(self) -> None:
        self._pending: Counter[tuple[str, int]] = Counter()

    def add(self, name: str, at: float) -> None:
        self._pending[(name, minute_of(at))] += 1

    def take(self) -> list[tuple[str, float, int]]:
        taken, self._pending = self._pending, Counter()
        return [(name, minute * 60.0, by) for (name, minute), by in taken.items()]
