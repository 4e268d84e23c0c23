"""On-call's state-changing actions, each followed by its audit entry (ops/audit.py).

The one body behind both faces: the CLI's commands (`rolesync dlq replay|purge`, `customers link|unlink|
paid`, `reconcile`) and the console's forms (console/) call these, so a replay or a purge from a page has exactly
the CLI's semantics: the worker's own replay (worker/runtime/replay.py), the dead-letter store's
compare-and-delete, the worker's own link (worker/customers/park.py), and who/why on the customers' timelines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dramatiq.brokers.redis import RedisBroker

from common.customers.links import CustomerLink
from common.infra.deadletters import DeadLetter
from ops import customers as ops_customers
from ops import dlq as ops_dlq
from ops.audit import Actor
from ops.enqueue import bulk_event_enqueuer, converge_enqueuer, event_enqueuer, notify_enqueuer
from ops.stores import Stores, audit_over, open_audit

if TYPE_CHECKING:
    from common.settings import Settings
    from worker.sweeps.reconcile import Summary, Verdict


@dataclass(frozen=True)
class Replayed:
    lines: list[str]  # one sentence per record: what was sent, or why not
    token_dropped: bool  # a `kinde_forbidden` record was among them: the shared token was dropped first


@dataclass(frozen=True)
class Purged:
    purged: int
    changed: int  # failed again since they were chosen (kept), or already removed


def replayer(stores: Stores, broker: RedisBroker, by: str) -> ops_dlq.Replayer:
    return ops_dlq.Replayer(stores.dead_letters, bulk_event_enqueuer(broker), converge_enqueuer(broker),
                            notify_enqueuer(broker), stores.history, by=by, send=broker.enqueue)  # fmt: skip


def replay_dead_letters(stores: Stores, broker: RedisBroker, records: list[DeadLetter], actor: Actor, selection: str,
                        *, each: Callable[[list[DeadLetter]], Iterable[DeadLetter]] = iter) -> Replayed:  # fmt: skip
    """Replay each record through the worker's replay (compare-and-delete of the replayed version), then audit."""
    dropped = ops_dlq.drop_token_if_scopes_changed(stores.redis, records)
    replay = replayer(stores, broker, actor.by)
    lines = [replay.replay(record) for record in each(records)]
    open_audit(stores).record("dlq_replay", actor, [r.customer_id for r in records], count=len(records),
                              selection=selection)  # fmt: skip
    return Replayed(lines, dropped)


def purge_dead_letters(stores: Stores, records: list[DeadLetter], actor: Actor, selection: str) -> Purged:
    """Remove each record as it was chosen (a version written since stays), then audit how many went."""
    purged = ops_dlq.purge(stores.dead_letters, records)
    open_audit(stores).record("dlq_purge", actor, [r.customer_id for r in records], count=purged,
                              selection=selection)  # fmt: skip
    return Purged(purged, len(records) - purged)


def link_customer(stores: Stores, broker: RedisBroker, actor: Actor, customer_id: str, user_id: str | None,
                  org_code: str | None) -> ops_customers.LinkChange:  # fmt: skip
    change = ops_customers.link(stores, event_enqueuer(broker), converge_enqueuer(broker), customer_id, user_id,
                                org_code)  # fmt: skip
    open_audit(stores).record("customers_link", actor, [customer_id], was=ops_customers.describe(change.old),
                              now=ops_customers.describe(change.new), replayed=change.replayed)  # fmt: skip
    return change


def unlink_customer(stores: Stores, actor: Actor, customer_id: str) -> CustomerLink:
    removed = ops_customers.unlink(stores, customer_id)
    open_audit(stores).record("customers_unlink", actor, [customer_id], was=ops_customers.describe(removed))
    return removed


def mark_paid(stores: Stores, broker: RedisBroker, actor: Actor, customer_id: str, now: float) -> None:
    ops_customers.mark_paid(stores, converge_enqueuer(broker), customer_id, now)
    open_audit(stores).record("customers_paid", actor, [customer_id])


def reconcile(settings: Settings, actor: Actor, only: list[str] | None, *, timeout_s: float, discover: bool,
              source: str, on_start: Callable[[int], None] = lambda _: None,
              on_verdict: Callable[[Verdict], None] = lambda _: None) -> Summary:  # fmt: skip
    """The real sweep on the fleet (every customer, or `only` these), watched to its end, then audited."""
    from worker.sweeps.reconcile import sweep
    from worker.sweeps.reconcile_schedule import build_fleet

    fleet = build_fleet(settings)
    summary = sweep(fleet, source=source, timeout_s=timeout_s, discover_first=discover, only=only,
                    on_start=on_start, on_verdict=on_verdict)  # fmt: skip
    audit_over(fleet.redis, settings).record("reconcile", actor, only or [], scope="customers" if only else "all",
                                             checked=summary.checked, fixed=summary.fixed)  # fmt: skip
    return summary
