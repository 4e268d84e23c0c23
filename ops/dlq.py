"""Dead letters for on-call: select with filters, replay through the worker, purge.

Replay is the worker's own (worker/runtime/replay.py), the one the scope probe uses for `kinde_forbidden`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import redis

from common import keys
from common.errors import PermanentError
from common.infra.connections import redis_errors
from common.infra.deadletters import FORBIDDEN, DeadLetter, DeadLetterStore
from common.infra.durations import BadDurationError, parse_duration
from worker.runtime.replay import EnqueueConverge as EnqueueConverge
from worker.runtime.replay import Replayer as Replayer

EVERYTHING = 1_000_000_000


class UnknownDeadLetterError(PermanentError):
    reason = "unknown_dead_letter"


class BadFilterError(PermanentError):
    reason = "bad_filter"


@dataclass(frozen=True)
class Filters:
    reason: str | None = None  # exact, or a prefix ending in ':' (`role_not_found:`)
    event_type: str | None = None
    customer_id: str | None = None
    since: float | None = None  # epoch seconds: only records that last failed at or after
    before: float | None = None  # epoch seconds: only records that last failed before

    def keeps(self, record: DeadLetter) -> bool:
        return (
            (self.event_type is None or record.event_type == self.event_type)
            and (self.since is None or record.last_failed_at >= self.since)
            and (self.before is None or record.last_failed_at < self.before)
        )


def moment(text: str, now: float) -> float:
    """`--since`: a duration back from now (`2h`) or an ISO date/time (`2026-11-20`, UTC unless it says)."""
    try:
        return now - parse_duration(text)
    except BadDurationError:
        pass
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadDurationError(f"{text!r} is neither a duration (2h, 7d) nor a date (2026-11-20T10:00)") from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def select(store: DeadLetterStore, filters: Filters, *, limit: int = EVERYTHING) -> list[DeadLetter]:
    """Newest failure first."""
    found = store.list(reason=filters.reason, customer_id=filters.customer_id, limit=EVERYTHING)
    return [r for r in found if filters.keeps(r)][:limit]


def find(store: DeadLetterStore, ids: Iterable[str]) -> list[DeadLetter]:
    """The records of `ids`, in order; UnknownDeadLetterError naming every id that has none."""
    wanted = list(dict.fromkeys(ids))
    found = {i: store.get(i) for i in wanted}
    missing = [i for i, record in found.items() if record is None]
    if missing:
        raise UnknownDeadLetterError(f"no dead letter with id {', '.join(missing)} (see: rolesync dlq list)")
    return [r for r in found.values() if r is not None]


def drop_token_if_scopes_changed(client: redis.Redis, records: Iterable[DeadLetter]) -> bool:
    """A Kinde token keeps the scopes it was issued with, so replaying `kinde_forbidden` records after
    granting the scope first drops the fleet's shared token; the next call fetches one that has it.
    (A 403 on a token older than a few seconds also refetches by itself; this saves that round trip.)"""
    if not any(r.reason == FORBIDDEN for r in records):
        return False
    with redis_errors("dropping the shared Kinde token"):
        client.delete(keys.KINDE_TOKEN)
    return True


def purge(store: DeadLetterStore, records: Iterable[DeadLetter]) -> int:
    """Remove each record as it was chosen: a version written since (the event failed again) stays, as
    after a replay (compare-and-delete). How many were removed."""
    return sum(store.remove_if_current(r) for r in records)
