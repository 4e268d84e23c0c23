"""Parking events whose customer is unknown, and replaying them the moment a link is learned.

A parked event is a dead letter with reason `customer_unresolved`, indexed by customer; the handler
has asked for an index rebuild covering it (worker/customers/rebuild.py), which learns links page by page.
Learning a link (from a later webhook, an index rebuild, or on-call's `link_customer`) re-enqueues
every event parked for that customer, and every one of its events that aged out as `too_old`
(before the rebuild had its own actor, an unresolved event could retry until the age limit), as
fresh messages, so no age limit applies to a replay however long the event waited (enqueue first,
then remove the record: a crash in between duplicates, which the coalescer absorbs, rather than
loses; the removal spares a record the replayed event wrote again meanwhile, see
common/infra/deadletters.py). The race "parked just after the link was learned" is closed from the parking side: after
writing the record, park re-reads the link and replays at once if it appeared meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from common.customers.history import History, entry
from common.customers.links import CustomerLink, LinkKind, LinkStore
from common.entitlements.grants import ALL_MEMBERS, GrantStore, Target
from common.infra.deadletters import TOO_OLD, UNRESOLVED, DeadLetter, DeadLetterStore
from common.webhooks.events import is_billing
from worker.runtime import metrics

log = structlog.get_logger(__name__)
Enqueue = Callable[[dict[str, Any], dict[str, Any], int], None]  # (claims, meta, delay_ms) → handle_event
Converge = Callable[[str, str], None]  # (customer_id, reason) → converge_customer


@dataclass(frozen=True)
class Parking:
    links: LinkStore
    dead_letters: DeadLetterStore
    enqueue: Enqueue
    converge: Converge | None = None  # a moved link's pass takes the customer's roles from the old target
    grants: GrantStore | None = None  # where the old target is noted, for a customer with no record yet
    history: History | None = None  # the customer's timeline: dead letters, link changes, replays
    b2c_org: Callable[[], str] | None = None  # where a user link without an org puts its roles

    def park(self, event_id: str, claims: dict[str, Any], meta: dict[str, Any], customer_id: str) -> None:
        """Record the event as unresolved until its customer's link is learned."""
        now = time.time()
        why = f"no user or org known for billing customer {customer_id} (waiting for an index rebuild or a link)"
        record = DeadLetter(event_id, claims, UNRESOLVED, why, 1, now, now, customer_id, str(claims.get("type")))
        self.dead_letters.put(record)
        metrics.DEAD_LETTERS.labels(UNRESOLVED).inc()
        log.info("event_parked", reason=UNRESOLVED)
        self._note(customer_id, entry("dead_letter", reason=UNRESOLVED, event_id=event_id, type=claims.get("type")))
        if self.links.get(customer_id) is not None:
            self.replay(customer_id)

    def learned(self, link: CustomerLink) -> int:
        """Store the link; a move queues a pass, and so does a link re-learned (after `organization.deleted`
        dropped it) at another placement than the one its roles were written at (its grant record's)."""
        old = self.links.get(link.customer_id)
        if old is not None and moved(old, link) and self.grants is not None:
            # Noted before the link changes: a customer granted before grant records existed has no record
            # naming its old target, and its next pass must still take its roles from there.
            self.grants.add_leaving(link.customer_id, [self._old_target(old)])
        moving = moved(old, link) if old is not None else self._written_elsewhere(link)
        self.links.put(link)
        log.info("customer_link_learned", customer_id=link.customer_id, kind=link.kind, source=link.source)
        if old is None or moving:
            self._note(link.customer_id, entry("link_changed", link_kind=link.kind, user_id=link.user_id,
                                               org_code=link.org_code, source=link.source,
                                               previous=_where(old)))  # fmt: skip
        if moving and self.converge is not None:
            self.converge(link.customer_id, "link_moved")
        return self.replay(link.customer_id)

    def _written_elsewhere(self, link: CustomerLink) -> bool:
        """Whether a customer without a link has roles written (its grant record) where the link puts none."""
        record = self.grants.get(link.customer_id) if self.grants is not None else None
        if record is None or not record.targets:
            return False  # nothing written anywhere: the events parked for it are its first pass
        if link.kind == "org":
            return any(t.org_code != link.org_code for t in record.targets)
        org = link.placed_org(self.b2c_org) if self.b2c_org else (link.org_code or None)
        if org is None:  # the B2C org is not known here: only another user is surely elsewhere
            return all(t.user_id != link.user_id for t in record.targets)
        return Target(org, link.user_id or "") not in record.targets

    def _old_target(self, old: CustomerLink) -> Target:
        if old.kind == "org" or not old.user_id:
            return Target(old.org_code or "", ALL_MEMBERS)
        return Target(old.placed_org(self.b2c_org or (lambda: "")), old.user_id)

    def replay(self, customer_id: str) -> int:
        parked = [r for r in self.dead_letters.of_customer(customer_id) if _waits_for_link(r)]
        for record in parked:
            self.enqueue(record.claims, {"replayed": True, "received_at": time.time()}, 0)
            self.dead_letters.remove_replayed(record)
        if parked:
            log.info("parked_events_replayed", customer_id=customer_id, count=len(parked))
            self._note(customer_id, entry("replayed", count=len(parked), event_ids=[r.id for r in parked]))
        return len(parked)

    def _note(self, customer_id: str, item: dict[str, Any]) -> None:
        if self.history is not None:
            self.history.add(customer_id, item)


def _where(link: CustomerLink | None) -> str | None:
    return None if link is None else f"{link.kind}:{link.user_id or ''}@{link.org_code or ''}"


def moved(old: CustomerLink, new: CustomerLink) -> bool:
    return (old.kind, old.user_id, old.org_code) != (new.kind, new.user_id, new.org_code)


def _waits_for_link(record: DeadLetter) -> bool:
    aged_out = record.reason == TOO_OLD and is_billing(str(record.event_type or ""))
    return record.reason == UNRESOLVED or aged_out


def link_customer(
    parking: Parking, customer_id: str, *, user_id: str | None = None, org_code: str | None = None
) -> int:
    """On-call's answer to "who is this customer?": store the link and replay what waited for it.

    `user_id` alone (or with `org_code`) links a B2C customer; `org_code` alone a B2B one.
    Returns how many parked events were re-enqueued.
    """
    if not customer_id or not (user_id or org_code):
        raise ValueError("give the customer id and a user id or an org code")
    kind: LinkKind = "user" if user_id else "org"
    return parking.learned(CustomerLink(customer_id, kind, user_id, org_code, "on_call", time.time()))
