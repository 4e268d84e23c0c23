"""A reconcile sweep: re-converge every known customer on the worker fleet and report the drift.

Webhooks get lost (Kinde gives up after its retry schedule; an endpoint can be disabled), so a sweep
re-checks everyone from Kinde's state: first the fleet runs an index rebuild (worker/customers/rebuild.py)
that pages Kinde's users and orgs to discover customers no webhook told us about, then one
`converge_customer` message per known customer goes to the broker, so the fleet's actors do the
work through the same code path as events, under the shared rate limit, lease and coalescing. The
sweeper then watches each
customer's state (worker/customers/customer_state.py) until its pass has finished, dead-lettered, or the deadline
passed (the message keeps retrying; it is reported as pending). The summary is kept in
`keys.RECONCILE_LAST` for `rolesync status`.

Used by `rolesync reconcile` (ops/reconcile.py) and by the scheduler (worker/sweeps/reconcile_schedule.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import redis
from dramatiq.brokers.redis import RedisBroker
from prometheus_client import Gauge

from common import keys
from common.customers.links import LinkStore
from common.infra.connections import redis_errors
from common.infra.deadletters import DeadLetterStore
from common.messages import converge_message
from worker.customers.customer_state import CustomerStates
from worker.customers.resolve import Resolver
from worker.events.handlers import Deps

Outcome = Literal["fixed", "in_step", "failed", "pending"]
POLL_S = 0.25
REASON = "reconcile"
# Set by the sweeping process; under the worker's scheduler they are served with the fleet's metrics.
DRIFT = Gauge("rolesync_reconcile_drift_customers", "Customers found drifted by the last sweep",
              multiprocess_mode="mostrecent")  # fmt: skip
FAILED = Gauge("rolesync_reconcile_failed_customers", "Customers failed or pending after the last sweep",
               multiprocess_mode="mostrecent")  # fmt: skip
FINISHED = Gauge("rolesync_reconcile_last_finished_timestamp_seconds", "When the last sweep finished",
                 multiprocess_mode="mostrecent")  # fmt: skip
NOT_LINKED = "customer_unresolved: no user or org known for it, even after paging Kinde; link it by hand"


@dataclass(frozen=True)
class Verdict:
    customer_id: str
    outcome: Outcome
    added: list[list[str]] = field(default_factory=list)  # [user_id, role key]
    removed: list[list[str]] = field(default_factory=list)
    error: str = ""


@dataclass
class Summary:
    started_at: float
    source: str  # cli | scheduler
    discovered: int = 0
    checked: int = 0
    drift: int = 0
    fixed: int = 0
    failed: int = 0
    pending: int = 0
    finished_at: float = 0.0
    failures: dict[str, str] = field(default_factory=dict)  # customer → error, for the report

    def count(self, verdict: Verdict) -> None:
        self.checked += 1
        self.drift += bool(verdict.added or verdict.removed)
        self.fixed += verdict.outcome == "fixed"
        self.failed += verdict.outcome == "failed"
        self.pending += verdict.outcome == "pending"
        if verdict.outcome in ("failed", "pending"):
            self.failures[verdict.customer_id] = verdict.error

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def discover(resolver: Resolver, links: LinkStore, *, deadline: float) -> int:
    """Have the fleet run an index rebuild starting now (even if one ran recently), wait for it to end
    (or `deadline`, epoch s), and say how many customers it newly linked."""
    before, since = set(links.all_customer_ids()), time.time()
    resolver.request_rebuild({"received_at": since})
    while not resolver.rebuilds.finished_since(since) and time.time() < deadline:
        time.sleep(POLL_S)
    return len(set(links.all_customer_ids()) - before)


def enqueue_all(broker: RedisBroker, customer_ids: Iterable[str], reason: str) -> int:
    sent = 0
    with redis_errors("enqueueing reconcile passes"):
        for customer_id in customer_ids:
            broker.enqueue(converge_message(customer_id, reason))
            sent += 1
    return sent


@dataclass(frozen=True)
class Watcher:
    """Tells, from what the workers recorded, whether a customer's pass since `since` has ended."""

    states: CustomerStates
    dead_letters: DeadLetterStore
    since: float

    def verdict(self, customer_id: str) -> Verdict | None:
        state = self.states.get(customer_id)
        if float(state.get("converged_at") or 0) >= self.since:
            added, removed = _pairs(state.get("last_added")), _pairs(state.get("last_removed"))
            return Verdict(customer_id, "fixed" if added or removed else "in_step", added, removed)
        dead = [r for r in self.dead_letters.of_customer(customer_id) if r.last_failed_at >= self.since]
        if dead:
            return Verdict(customer_id, "failed", error=f"{dead[0].reason}: {dead[0].last_error}"[:300])
        return None

    def pending(self, customer_id: str) -> Verdict:
        error = self.states.get(customer_id).get("last_error") or "not converged yet (still queued or retrying)"
        return Verdict(customer_id, "pending", error=error[:300])


def watch(watcher: Watcher, customer_ids: list[str], *, deadline: float, on_verdict: Callable[[Verdict], None]) -> None:
    """Report each customer's verdict once, polling until all have one or `deadline` (epoch s) passed."""
    waiting = list(customer_ids)
    while waiting and time.time() < deadline:
        still = []
        for customer_id in waiting:
            found = watcher.verdict(customer_id)
            if found is None:
                still.append(customer_id)
            else:
                on_verdict(found)
        waiting = still
        if waiting:
            time.sleep(min(POLL_S * (1 + len(waiting) // 1000), max(0.0, deadline - time.time())))
    for customer_id in waiting:
        on_verdict(watcher.pending(customer_id))


def record(client: redis.Redis, summary: Summary) -> None:
    DRIFT.set(summary.drift)
    FAILED.set(summary.failed + summary.pending)
    FINISHED.set(summary.finished_at)
    with redis_errors("recording the reconcile summary"):
        client.set(keys.RECONCILE_LAST, summary.to_json())


def last(client: redis.Redis) -> dict[str, Any] | None:
    with redis_errors("reading the last reconcile"):
        raw = client.get(keys.RECONCILE_LAST)
    return dict(json.loads(str(raw))) if raw else None


def _pairs(raw: str | None) -> list[list[str]]:
    try:
        found = json.loads(raw or "[]")
    except ValueError:
        return []
    return [list(map(str, pair)) for pair in found if isinstance(pair, list | tuple) and len(pair) == 2]


@dataclass(frozen=True)
class Fleet:
    """What a sweep needs: the worker's own dependencies, a broker to enqueue on, and Redis."""

    deps: Deps
    dead_letters: DeadLetterStore
    broker: RedisBroker
    redis: redis.Redis


def sweep(
    fleet: Fleet,
    *,
    source: str,
    timeout_s: float,
    discover_first: bool = True,
    only: list[str] | None = None,
    on_start: Callable[[int], None] = lambda _: None,
    on_verdict: Callable[[Verdict], None] = lambda _: None,
) -> Summary:
    """Discover, enqueue one pass per known customer (or per `only`), watch them end; return the summary.

    A whole-fleet sweep is recorded for `rolesync status`; a sweep of `only` some customers is not.
    Discovery (a full index rebuild) runs for `only` when one of them has no link yet.
    """
    summary = Summary(time.time(), source)

    def counted(verdict: Verdict) -> None:
        summary.count(verdict)
        on_verdict(verdict)

    if discover_first and (only is None or unlinked(fleet.deps.links, only)):
        deadline = summary.started_at + timeout_s
        summary.discovered = discover(fleet.deps.resolver, fleet.deps.links, deadline=deadline)
    customer_ids = fleet.deps.links.all_customer_ids() if only is None else sorted(set(only))
    on_start(len(customer_ids))
    missing = set(unlinked(fleet.deps.links, customer_ids))
    for customer_id in sorted(missing):
        counted(Verdict(customer_id, "failed", error=NOT_LINKED))
    linked = [c for c in customer_ids if c not in missing]
    enqueue_all(fleet.broker, linked, REASON)
    watcher = Watcher(fleet.deps.states, fleet.dead_letters, summary.started_at)
    watch(watcher, linked, deadline=summary.started_at + timeout_s, on_verdict=counted)
    summary.finished_at = time.time()
    if only is None:
        record(fleet.redis, summary)
    return summary


def unlinked(links: LinkStore, customer_ids: Iterable[str]) -> list[str]:
    return [customer_id for customer_id in customer_ids if links.get(customer_id) is None]
