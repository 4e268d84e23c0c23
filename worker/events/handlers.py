"""What the worker does with one message: plain functions over injected dependencies.

The actors (worker/runtime/actors.py) only decode the message and call these; nothing here knows about
Dramatiq. Each returns an outcome word for logs and metrics:
`converged`, `duplicate` (this event was handled before: a broker redelivery or a replay; no Kinde call),
`superseded` (first handled now, but a newer pass already read the state it changed; no Kinde call),
`parked`, `links_dropped`, `no_customer` (a user or org without a billing customer yet), `ignored`.
Every word, and what on-call makes of it, is in docs/on-call.md (History outcomes).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from common.customers.history import History, entry
from common.customers.links import CustomerLink, LinkStore, placed_org
from common.entitlements.grants import ALL_MEMBERS, Target
from common.entitlements.snapshots import SnapshotStore
from common.errors import ContendedError, PermanentError, ServiceError
from common.guard.members import MemberCache
from common.guard.usage import USAGE_EVENT, UsageStore, reading_of
from common.infra import tracing
from common.infra.minute_counts import CONVERGED
from common.plans.payments import event_time, standing_after
from common.webhooks.events import (
    ORG_EVENTS,
    USER_EVENTS,
    customer_id_of,
    deleted_org_code_of,
    epoch_of,
    is_acted_on,
    is_billing,
    org_code_of,
    user_id_of,
)
from worker.convergence.converge import Converger, Outcome
from worker.customers.customer_state import CustomerStates
from worker.customers.park import Parking
from worker.customers.resolve import Learned, Resolver
from worker.events.coalesce import ALL_PARTS, Coalescer
from worker.kinde.answers import ORG_NOT_FOUND
from worker.kinde.ratelimit import patient_slot_waits
from worker.runtime import metrics

log = structlog.get_logger(__name__)
# A billing event and the user.created that teaches its link arrive together, in any order:
# waiting a few seconds (delayed retries) beats an index rebuild, which is many billable calls.
LINK_GRACE_S = 5.0


# Kinde fires cancelled + created + changed for one plan change, a few ms apart: letting a fresh
# billing event settle this long first lets one pass cover all three (calls per change ≈ 4, not ≈ 6).
SETTLE_S = 1.0
RECONCILE = "reconcile"  # a pass asked for by a sweep (worker/sweeps/reconcile.py)
HANDLED = "handled"  # the part recorded once a billing event or converge request is handled: next time a duplicate


class SettlingError(ContendedError):
    reason = "settling"


class AwaitingLinkError(ContendedError):
    reason = "awaiting_link"

    def __init__(self, message: str) -> None:
        super().__init__(message, retry_after_s=1.0)


@dataclass(frozen=True)
class Deps:
    links: LinkStore
    coalescer: Coalescer
    resolver: Resolver
    converger: Converger
    parking: Parking
    states: CustomerStates
    clock: Callable[[], float] = time.time
    settle_s: float = SETTLE_S
    usage: UsageStore | None = None  # metered usage per customer and feature
    history: History | None = None  # each customer's timeline (common/customers/history.py)
    members: MemberCache | None = None  # the plan-selection guard's org member cache (common/guard/members.py)
    count: Callable[[str], None] | None = None  # the console chart's per-minute counts (common/infra/minute_counts.py)

    def note(self, customer_id: str, item: dict[str, Any]) -> None:
        if self.history is not None:
            self.history.add(customer_id, item)


def event_id_of(claims: dict[str, Any], meta: dict[str, Any]) -> str:
    """The signed `event_id` (or `jti`); a digest of the claims as a last resort, never random."""
    found = claims.get("event_id") or claims.get("jti") or meta.get("webhook_id")
    if found:
        return str(found)
    return "claims_" + hashlib.sha256(json.dumps(claims, sort_keys=True).encode()).hexdigest()[:32]


def handle_event(deps: Deps, claims: dict[str, Any], meta: dict[str, Any]) -> str:
    outcome = _handle(deps, claims, meta)
    customer_id = customer_id_of(claims) if is_billing(str(claims.get("type") or "")) else None
    if customer_id and outcome in ("converged", "superseded"):  # so a second delivery reads as a duplicate
        deps.coalescer.part_done(event_id_of(claims, meta), HANDLED)
    if customer_id:  # Kinde's timestamp and ids only: never the token, never the raw claims
        deps.note(customer_id, entry("webhook", type=claims.get("type"), event_id=event_id_of(claims, meta),
                                     kinde_timestamp=claims.get("timestamp"), outcome=outcome,
                                     replayed=bool(meta.get("replayed"))))  # fmt: skip
    return outcome


def _handle(deps: Deps, claims: dict[str, Any], meta: dict[str, Any]) -> str:
    event_type, event_id = str(claims.get("type") or ""), event_id_of(claims, meta)
    if not is_acted_on(event_type):
        return "ignored"
    if is_billing(event_type):
        _record_payment(deps, event_id, claims, meta)  # before any coverage check: it may uncover the event
        _record_usage(deps, event_id, claims, meta)
    if _already_covered(deps, event_id) and _recount_covered(deps, event_id):
        return _covered_outcome(deps, event_id)
    if ALL_PARTS in deps.coalescer.parts_done(event_id):
        return "duplicate"  # a user/org event every part of which was done
    if event_type == "user.deleted":
        return _user_deleted(deps, claims)
    if event_type == "organization.deleted":
        return _org_deleted(deps, claims)
    if event_type in USER_EVENTS or event_type in ORG_EVENTS:
        _created(deps, event_type, claims)
        return _learned(deps, event_id, claims, _learn(deps, event_type, claims))
    return _billing(deps, event_id, claims, meta)


def converge_customer(deps: Deps, customer_id: str, reason: str, request_id: str) -> str:
    """Re-converge one customer now (reconcile, replay, on-call), whatever events said.

    `request_id` identifies the request (its message id): a redelivery of the same request gets the
    same generation back, while every new request, however soon after the last, gets a fresh one.
    """
    link = deps.links.get(customer_id)
    if link is None:
        raise PermanentError(f"no link known for customer {customer_id}", reason="customer_unresolved")
    request = f"converge:{reason}:{request_id}:{customer_id}"
    generation = deps.coalescer.assign(request, customer_id)
    outcome = converge_pass(deps, link, generation, claims=None, handled_as=request)
    if outcome == "converged":
        deps.coalescer.part_done(request, HANDLED)  # a redelivery of this request then reads as a duplicate
    return outcome


def converge_target(deps: Deps, org_code: str, user_id: str, reason: str) -> str:
    """Converge one (org, user) target to the union of its covering parties now (org "" = the B2C org).

    Asked for when a hand grant covering it was added, removed or ended: no customer's pass is due.
    """
    target = Target(placed_org(org_code, deps.converger.b2c_org), user_id)
    structlog.contextvars.bind_contextvars(org_code=target.org_code, user_id=user_id)
    with patient_slot_waits():
        step = deps.converger.targets.converge(target, member=None)
    added, removed = [r for _, r in step.added], [r for _, r in step.removed]
    kind = "shadow_target_pass" if deps.converger.shadow is not None else "target_pass"
    for customer_id in sorted(step.covering):
        deps.note(customer_id, entry(kind, reason=reason, user_id=user_id, org_code=target.org_code, added=added,
                                     removed=removed))  # fmt: skip
    log.info("target_converged", reason=reason, added=step.added, removed=step.removed)
    return "converged"


def converge_pass(
    deps: Deps,
    link: CustomerLink,
    generation: int,
    claims: dict[str, Any] | None,
    *,
    handled_as: str = "",
) -> str:
    """`handled_as`: the id whose HANDLED part says a covered generation is this message's second delivery."""
    customer_id = link.customer_id
    tracing.annotate(**{"customer.id": customer_id})  # the pass's span: an event may name its customer only by user
    with deps.coalescer.lease(customer_id) as (target, lease):
        if deps.coalescer.covered(customer_id, generation):  # a pass that started after it was counted finished
            return _covered_outcome(deps, handled_as) if handled_as else "superseded"
        link = deps.links.get(customer_id) or link  # read under the lease: a move may have landed since
        try:
            with patient_slot_waits():
                outcome = deps.converger.run(link, target, lease.check)
        except ServiceError as exc:
            if _org_missing(link, exc):  # its `organization.deleted` lost or not yet handled: the same cleanup
                gone = _org_gone(deps, link.org_code)
                deps.states.converged(link, Outcome(frozenset()))  # ended: a reconcile sweep's verdict, in step
                return gone
            deps.states.failed(customer_id, exc)
            raise
        deps.coalescer.done(customer_id, target)
    deps.states.converged(link, outcome)
    read = outcome.reads()
    added, removed = [f"{u}:{r}" for u, r in outcome.added], [f"{u}:{r}" for u, r in outcome.removed]
    if deps.converger.shadow is not None:  # shadow mode: what the pass would have written, none of it done
        deps.note(customer_id, entry("shadow_pass", generation=generation, read=read, roles=sorted(outcome.desired),
                                     would_add=added, would_remove=removed))  # fmt: skip
    else:
        deps.note(customer_id, entry("pass", generation=generation, read=read, roles=sorted(outcome.desired),
                                     added=added, removed=removed))  # fmt: skip
    if deps.count is not None:
        deps.count(CONVERGED)
    _observe_latency(claims, deps.clock())
    log.info("customer_converged", desired=sorted(outcome.desired), added=outcome.added, removed=outcome.removed)
    return "converged"


def _org_missing(link: CustomerLink, exc: ServiceError) -> bool:
    """An org customer's pass found its org gone: Kinde lists no members of an org it does not know."""
    return link.kind == "org" and bool(link.org_code) and exc.reason == ORG_NOT_FOUND


def _covered_outcome(deps: Deps, event_id: str) -> str:
    """A covered event makes no Kinde call; `duplicate` if it was handled before (a redelivery), else
    `superseded`: the ingest counted it, and a pass that started later applied it before a worker got to it."""
    return "duplicate" if deps.coalescer.parts_done(event_id) & {HANDLED, ALL_PARTS} else "superseded"


def _already_covered(deps: Deps, event_id: str) -> bool:
    known = deps.coalescer.known(event_id)
    return known is not None and deps.coalescer.covered(*known)


def _payment_id(event_id: str) -> str:
    """The id a payment event is counted under again when it changed the customer's standing."""
    return f"{event_id}:payment"


def _recount(deps: Deps, event_id: str) -> tuple[str, int] | None:
    """A payment event's recount (see `_record_payment`); only the suspend policy makes them."""
    return deps.coalescer.known(_payment_id(event_id)) if deps.converger.plans.suspends() else None


def _recount_covered(deps: Deps, event_id: str) -> bool:
    recount = _recount(deps, event_id)
    return recount is None or deps.coalescer.covered(*recount)


def _billing(deps: Deps, event_id: str, claims: dict[str, Any], meta: dict[str, Any]) -> str:
    customer_id = customer_id_of(claims)
    if customer_id is None:
        raise PermanentError("billing event names no customer id", reason="customer_id_missing")
    structlog.contextvars.bind_contextvars(customer_id=customer_id)
    generation = deps.coalescer.assign(event_id, customer_id)
    recount = _recount(deps, event_id)
    generation = max(generation, recount[1]) if recount else generation
    if deps.coalescer.covered(customer_id, generation):
        return _covered_outcome(deps, event_id)
    wait = _settle_wait(meta, deps.clock(), deps.settle_s)
    if wait > 0:
        raise SettlingError(f"letting the events of customer {customer_id} settle", retry_after_s=wait)
    link = deps.resolver.resolve(customer_id, claims)
    if link is None and _young(meta, deps.clock()):
        raise AwaitingLinkError(f"customer {customer_id} unknown yet; waiting for its user/org event")
    if link is None:
        deps.resolver.request_rebuild(meta)
        deps.parking.park(event_id, claims, meta, customer_id)
        return "parked"
    return converge_pass(deps, link, generation, claims, handled_as=event_id)


def _record_payment(deps: Deps, event_id: str, claims: dict[str, Any], meta: dict[str, Any]) -> None:
    """Record a payment event's standing; if that flips the customer's roles, count the event again.

    The ingest counted the event before the standing changed, so a pass since then may have read the
    old standing and still cover it; counted again now, only a pass that reads the new standing does.
    The recount persists, and a retry after a failure between the two still counts it (the store
    remembers which event made the flip), so a retry of this event still waits for such a pass.

    An event without its own time is dated by its receipt. A replay (worker/customers/park.py, `rolesync dlq`)
    carries the replay's time instead, so it is dated as old as can be: it was recorded when first
    handled (parking comes after this), and a replay must not overrule what was received since.
    """
    standing, customer_id = standing_after(str(claims.get("type") or "")), customer_id_of(claims)
    payments = deps.converger.payments  # the store the converger reads the standing from
    if payments is None or standing is None or customer_id is None:
        return
    received = meta.get("received_at")
    fallback = float(received) if isinstance(received, int | float) else deps.clock()
    at = event_time(claims, fallback=0.0 if meta.get("replayed") else fallback)
    if payments.record(customer_id, standing, at, event_id):
        log.info("payment_standing_changed", standing=standing, customer_id=customer_id)
        deps.note(customer_id, entry("payment_standing", standing=standing, event_id=event_id, event_at=at))
        if deps.converger.plans.suspends():
            deps.coalescer.assign(_payment_id(event_id), customer_id)


def _record_usage(deps: Deps, event_id: str, claims: dict[str, Any], meta: dict[str, Any]) -> None:
    """Keep a meter reading (its data shape is unpublished: common/guard/usage.py accepts every known variant)."""
    customer_id = customer_id_of(claims)
    if deps.usage is None or claims.get("type") != USAGE_EVENT or customer_id is None:
        return
    received = meta.get("received_at")
    reading = reading_of(claims, event_id, float(received) if isinstance(received, int | float) else deps.clock())
    if deps.usage.record(customer_id, reading):
        log.info("usage_recorded", feature_code=reading.feature_code, value=reading.value)


def _settle_wait(meta: dict[str, Any], now: float, settle_s: float) -> float:
    received = meta.get("received_at")
    if not isinstance(received, int | float) or meta.get("replayed") or meta.get("rechecks"):
        return 0.0
    return settle_s - (now - float(received))


def _young(meta: dict[str, Any], now: float) -> bool:
    """Within the grace in which the user.created/organization.created of a fresh sign-up usually lands."""
    received = meta.get("received_at")
    fresh = isinstance(received, int | float) and now - float(received) < LINK_GRACE_S
    return fresh and not meta.get("rechecks") and not meta.get("replayed")


def _learn(deps: Deps, event_type: str, claims: dict[str, Any]) -> Learned:
    if event_type in USER_EVENTS:
        user_id = user_id_of(claims)
        return deps.resolver.learn_user(user_id) if user_id else Learned([])
    org_code = org_code_of(claims)
    return deps.resolver.learn_org(org_code) if org_code else Learned([])


def _learned(deps: Deps, event_id: str, claims: dict[str, Any], learned: Learned) -> str:
    """Converge each customer the event taught and each paying org the user is a member of.

    Each part is recorded done on its own, so a retry after one part failed does exactly the rest.
    """
    if learned.user_id is not None and deps.members is not None:  # the look-up listed the user's orgs
        deps.members.user_orgs(learned.user_id, learned.org_codes)
    done, outcome = deps.coalescer.parts_done(event_id), "no_customer"
    for link in learned.links:
        if f"customer:{link.customer_id}" not in done:
            outcome = _customer_part(deps, event_id, claims, link)
    for target in _member_targets(deps, learned):
        if f"target:{target.key}" not in done:
            deps.converger.join(target)
            deps.coalescer.part_done(event_id, f"target:{target.key}")
            outcome = "converged"
    for target in _left_targets(deps, learned):
        if f"left:{target.key}" not in done:
            deps.converger.left_member(target)
            deps.coalescer.part_done(event_id, f"left:{target.key}")
            outcome = "converged"
    deps.coalescer.part_done(event_id, ALL_PARTS)
    return outcome


def _left_targets(deps: Deps, learned: Learned) -> list[Target]:
    """Where the user holds a snapshot in an org Kinde's look-up no longer lists it in (Kinde sends no event
    when a member is removed; the user's next event is the first word of it)."""
    snapshots = deps.converger.snapshots
    if learned.user_id is None or snapshots is None:
        return []
    held = snapshots.of_user(learned.user_id)
    return sorted({s.target for s in held if s.target.org_code not in learned.org_codes}, key=lambda t: t.key)


def _customer_part(deps: Deps, event_id: str, claims: dict[str, Any], link: CustomerLink) -> str:
    structlog.contextvars.bind_contextvars(customer_id=link.customer_id)
    generation = deps.coalescer.assign(f"{event_id}:{link.customer_id}", link.customer_id)
    outcome = converge_pass(deps, link, generation, claims)
    deps.coalescer.part_done(event_id, f"customer:{link.customer_id}")
    return outcome


def _created(deps: Deps, event_type: str, claims: dict[str, Any]) -> None:
    """A user or org created with a deleted one's id exists again (worker/convergence/deleted.py)."""
    if deps.converger.deletions is None or not event_type.endswith(".created"):
        return
    user_id, org_code = (user_id_of(claims), None) if event_type in USER_EVENTS else (None, org_code_of(claims))
    deps.converger.deletions.created(user_id=user_id, org_code=org_code)


def _member_targets(deps: Deps, learned: Learned) -> list[Target]:
    """The user's memberships in orgs a billing customer pays for or an active hand grant covers, beside the
    user's own customers' targets. A grant's target has no customer whose pass would find a member back in
    its org (a rejoin, or a grant made before the join): the user event is the only word of it."""
    if learned.user_id is None:
        return []
    own = {link.org_code for link in learned.links}
    placed = {link.org_code or deps.converger.b2c_org() for link in learned.links}  # a B2C link's org is None
    granted = _granted_orgs(deps, learned.user_id) - placed
    covered = [org for org in learned.org_codes if org not in own and (org in granted or _org_pays(deps, org))]
    return [Target(org, learned.user_id) for org in covered]


def _granted_orgs(deps: Deps, user_id: str) -> set[str]:
    """The orgs an active hand grant gives the user roles in (its org, or the B2C org when it names none)."""
    store, now = deps.converger.hand_grants, deps.clock()
    if store is None:
        return set()
    return {grant.org_code or deps.converger.b2c_org() for grant in store.of_user(user_id) if grant.active(now)}


def _org_pays(deps: Deps, org_code: str) -> bool:
    return bool(deps.links.payers_of_org(org_code))


def _user_deleted(deps: Deps, claims: dict[str, Any]) -> str:
    user_id = user_id_of(claims)
    if user_id and deps.converger.deletions is not None:
        deps.converger.deletions.mark_user(user_id)  # first: a pass checking after this stores no snapshot
    recorded = _recorded_targets(deps, user_id) if user_id else []  # before the links go
    dropped = deps.resolver.drop_user(user_id) if user_id else []
    if user_id and deps.converger.snapshots is not None:
        _forget_user(deps, deps.converger.snapshots, user_id, recorded)  # the read API answers 404 for a deleted user
    if user_id and deps.members is not None:
        deps.members.user_gone(user_id)
    if user_id:
        _drop_hand_grants(deps, [g.grant_id for g in deps.converger.hand_grants.of_user(user_id)]
                          if deps.converger.hand_grants is not None else [])  # fmt: skip
    log.info("user_links_dropped", user_id=user_id, customers=dropped)
    return "links_dropped"


def _recorded_targets(deps: Deps, user_id: str) -> list[Target]:
    """The user's targets its own customers' grant records name: a pass may be storing the first snapshot
    of one, which no snapshot lists yet (worker/convergence/deleted.py)."""
    records = deps.converger.grants.get_many(deps.links.customers_of_user(user_id))
    return [t for r in records.values() for t in r.targets if t.user_id == user_id]


def _forget_user(deps: Deps, snapshots: SnapshotStore, user_id: str, recorded: list[Target]) -> None:
    """Each target under its lease: a pass about to store its snapshot finishes first, so the deletion has
    the last word in the snapshot, the table and the app's notifications."""
    targets = {*(s.target for s in snapshots.of_user(user_id)), *recorded}
    for target in sorted(targets):
        _remove_held(deps, snapshots, target)
    snapshots.forget_user(user_id)


def _remove_held(deps: Deps, snapshots: SnapshotStore, target: Target) -> None:
    with deps.converger.locks.hold(target):
        snapshots.remove(target)


def _org_deleted(deps: Deps, claims: dict[str, Any]) -> str:
    """The org and the roles in it are gone: forget its own link and its members' links into it.

    Its members left it with it, which can change where their personal customers belong (a user
    left with one org is placed there): Kinde sends no event for them, so an index rebuild re-places
    everyone, and each link it moves queues a pass. A deletion is rare; a rebuild is many calls.
    """
    return _org_gone(deps, deleted_org_code_of(claims))


def _org_gone(deps: Deps, org_code: str | None) -> str:
    """What `organization.deleted` does; also a pass's answer when Kinde says its org does not exist."""
    if org_code and deps.converger.deletions is not None:
        deps.converger.deletions.mark_org(org_code)  # first: a pass checking after this stores no snapshot there
    if org_code:
        _forget_org_targets(deps, org_code)  # before the links go: a retry must still find the targets
    dropped = deps.resolver.drop_org(org_code) if org_code else []
    if org_code and deps.members is not None:
        deps.members.org_gone(org_code)
    if org_code and deps.converger.hand_grants is not None:
        _drop_hand_grants(deps, [g.grant_id for g in deps.converger.hand_grants.listed() if g.org_code == org_code])
    log.info("org_links_dropped", org_code=org_code, customers=dropped)
    deps.resolver.request_rebuild({"received_at": deps.clock()})
    return "links_dropped"


def _drop_hand_grants(deps: Deps, grant_ids: list[str]) -> None:
    """Hand grants naming a deleted user or org: nothing left for them to give (the roles went with it)."""
    store = deps.converger.hand_grants
    for grant_id in grant_ids:
        if store is not None and store.remove(grant_id, deps.clock()) is not None:
            log.info("hand_grant_dropped", grant_id=grant_id, reason="deleted_in_kinde")


def _forget_org_targets(deps: Deps, org_code: str) -> None:
    """What the org's members held there is gone with it: their snapshots (and so the table rows) go,
    and the app is told. No pass converges them again, as the org's customers lose their links."""
    snapshots = deps.converger.snapshots
    if snapshots is None:
        return
    records = deps.converger.grants.get_many(deps.links.customers_of_org(org_code))
    targets = {t for r in records.values() for t in r.targets if t.org_code == org_code and t.user_id != ALL_MEMBERS}
    for target in sorted(targets, key=lambda t: t.user_id):
        _remove_held(deps, snapshots, target)


def _observe_latency(claims: dict[str, Any] | None, now: float) -> None:
    happened = epoch_of(claims.get("timestamp")) if claims else None
    if happened is not None:
        metrics.EVENT_TO_CONVERGED.observe(max(0.0, now - happened))
