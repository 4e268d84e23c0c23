"""Parking events whose customer is unknown, and replaying them the moment a link is learned.

A parked event is a dead letter with reason `customer_unresolved`, indexed by customer; the handler
has asked for an index rebuild covering it (worker/rebuild.py), which learns links page by page.
Learning a link (from a later webhook, an index rebuild, or on-call's `link_customer`) re-enqueues
every event parked for that customer, and every one of its events that aged out as `too_old`
(before the rebuild had its own actor, an unresolved event could retry until the age limit), as
fresh messages, so no age limit applies to a replay however long the event waited (enqueue first,
then remove the record: a crash in between duplicates, which the coalescer absorbs, rather than
loses). The race "parked just after the link was learned" is closed from the parking side: after
writing the record, park re-reads the link and replays at once if it appeared meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from common.deadletters import TOO_OLD, UNRESOLVED, DeadLetter, DeadLetterStore
from common.events import is_billing
from common.links import CustomerLink, LinkKind, LinkStore
from worker import metrics

log = structlog.get_logger(__name__)
Enqueue = Callable[[dict[str, Any], dict[str, Any], int], None]  # (claims, meta, delay_ms) → handle_event


@dataclass(frozen=True)
class Parking:
    links: LinkStore
    dead_letters: DeadLetterStore
    enqueue: Enqueue

    def park(self, event_id: str, claims: dict[str, Any], meta: dict[str, Any], customer_id: str) -> None:
        """Record the event as unresolved until its customer's link is learned."""
        now = time.time()
        why = f"no user or org known for billing customer {customer_id} (waiting for an index rebuild or a link)"
        record = DeadLetter(event_id, claims, UNRESOLVED, why, 1, now, now, customer_id, str(claims.get("type")))
        self.dead_letters.put(record)
        metrics.DEAD_LETTERS.labels(UNRESOLVED).inc()
        log.info("event_parked", reason=UNRESOLVED)
        if self.links.get(customer_id) is not None:
            self.replay(customer_id)

    def learned(self, link: CustomerLink) -> int:
        self.links.put(link)
        log.info("customer_link_learned", customer_id=link.customer_id, kind=link.kind, source=link.source)
        return self.replay(link.customer_id)

    def replay(self, customer_id: str) -> int:
        parked = [r for r in self.dead_letters.of_customer(customer_id) if _waits_for_link(r)]
        for record in parked:
            self.enqueue(record.claims, {"replayed": True, "received_at": time.time()}, 0)
            self.dead_letters.remove(record.id)
        if parked:
            log.info("parked_events_replayed", customer_id=customer_id, count=len(parked))
        return len(parked)


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
