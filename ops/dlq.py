"""Dead letters for on-call: select with filters, replay through the worker, purge.

Replay re-enqueues the record's event for `handle_event` (or, for a failed `converge_customer`
pass, that customer's pass) and removes the record only once the message is on the broker: a
crash in between duplicates the message, which the worker's coalescing absorbs, rather than
losing it. A worker may fail the replayed event again before the removal; the removal is a
compare-and-delete of the replayed version, so that newer record stays. Replaying cannot regress
roles: the worker re-reads Kinde's current state.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import redis

from common import keys
from common.connections import redis_errors
from common.deadletters import UNDECODABLE, DeadLetter, DeadLetterStore
from common.durations import BadDurationError, parse_duration
from common.errors import PermanentError
from common.messages import CONVERGE_CUSTOMER_ACTOR
from worker.park import Enqueue

EnqueueConverge = Callable[[str, str], None]  # (customer_id, reason)
EVERYTHING = 1_000_000_000
MISSING_SCOPE = "missing_scope:"


class UnknownDeadLetterError(PermanentError):
    reason = "unknown_dead_letter"


@dataclass(frozen=True)
class Filters:
    reason: str | None = None  # exact, or a prefix ending in ':' (`missing_scope:`)
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


@dataclass(frozen=True)
class Replayer:
    store: DeadLetterStore
    enqueue_event: Enqueue
    enqueue_converge: EnqueueConverge

    def replay(self, record: DeadLetter) -> str:
        """Enqueue, then remove this version of the record; a sentence saying what was sent."""
        if record.reason == UNDECODABLE:  # no claims to send: the worker could never read the message
            return f"{record.id}: not replayed, its message was never decodable (read it with dlq show, then purge)"
        what = self._enqueue(record)
        if self.store.remove_if_current(record):
            return f"{record.id}: {what} re-enqueued"
        return f"{record.id}: {what} re-enqueued; kept its record, which failed again meanwhile"

    def _enqueue(self, record: DeadLetter) -> str:
        with redis_errors("re-enqueueing a dead letter"):
            if record.event_type == CONVERGE_CUSTOMER_ACTOR and record.customer_id:
                self.enqueue_converge(record.customer_id, "replay")
                return f"re-converge of customer {record.customer_id}"
            self.enqueue_event(record.claims, {"replayed": True, "received_at": time.time()}, 0)
            return f"{record.event_type} event"


def drop_token_if_scopes_changed(client: redis.Redis, records: Iterable[DeadLetter]) -> bool:
    """A Kinde token keeps the scopes it was issued with, so replaying `missing_scope:*` records after
    granting the scope first drops the fleet's shared token; the next call fetches one that has it."""
    if not any(r.reason.startswith(MISSING_SCOPE) for r in records):
        return False
    with redis_errors("dropping the shared Kinde token"):
        client.delete(keys.KINDE_TOKEN)
    return True


def purge(store: DeadLetterStore, records: Iterable[DeadLetter]) -> int:
    return sum(store.remove(r.id) for r in records)
