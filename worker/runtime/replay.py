"""Sending a dead letter back through the worker: on-call's `rolesync dlq replay` and the scope probe.

Replay dispatches to the actor that failed: a webhook's event goes back to `handle_event` (on the
bulk queue), a failed `converge_customer` pass becomes that customer's pass, and any other actor's
message (an index-rebuild chunk: `rebuild_index` with its chain's holder, which resumes the rebuild
from its cursor) is sent again as it was, with its own args. It removes the record only once the
message is on the broker: a crash in between duplicates the message, which the worker's
coalescing (or the rebuild's lease) absorbs, rather than losing it. A worker may fail the replayed
event again before the removal; the removal is a compare-and-delete of the replayed version, so that
newer record stays. Replaying cannot regress roles: the worker re-reads Kinde's current state.

A failed webhook to the app (`notify_failed`, worker/outputs/notify_delivery.py) is sent again as it was,
with its webhook id, to `notify_app`. Each replay of a customer's record is on its timeline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dramatiq

from common.customers.history import History, entry
from common.infra.connections import redis_errors
from common.infra.deadletters import UNDECODABLE, DeadLetter, DeadLetterStore
from common.messages import CONVERGE_CUSTOMER_ACTOR, own_message
from worker.customers.park import Enqueue
from worker.outputs.notify import NOTIFICATION_TYPE, Send

EnqueueConverge = Callable[[str, str], None]  # (customer_id, reason)
SendMessage = Callable[[dramatiq.Message[Any]], object]  # a broker's `enqueue`


@dataclass(frozen=True)
class Replayer:
    store: DeadLetterStore
    enqueue_event: Enqueue
    enqueue_converge: EnqueueConverge
    enqueue_notify: Send | None = None  # None: this caller does not replay webhooks to the app
    history: History | None = None  # customers' timelines
    by: str = "on_call"  # who replays, for the timeline: on-call's `rolesync dlq replay`, or the scope probe
    send: SendMessage | None = None  # other actors' own messages (a rebuild chunk); None: not replayed here

    def replay(self, record: DeadLetter) -> str:
        """Enqueue, then remove this version of the record; a sentence saying what was sent."""
        if record.reason == UNDECODABLE:  # no claims to send: the worker could never read the message
            return f"{record.id}: not replayed, its message was never decodable (read it with dlq show, then purge)"
        if record.event_type == NOTIFICATION_TYPE and self.enqueue_notify is None:
            return f"{record.id}: not replayed here, it is a webhook to the app (use rolesync dlq replay)"
        own = _own_message(record)
        if own is not None and self.send is None:
            return f"{record.id}: not replayed here, it is a {own.actor_name} message (use rolesync dlq replay)"
        what = self._enqueue(record)
        self._note(record)
        if self.store.remove_replayed(record):
            return f"{record.id}: {what} re-enqueued"
        return f"{record.id}: {what} re-enqueued; kept its record, which failed again meanwhile"

    def _enqueue(self, record: DeadLetter) -> str:
        with redis_errors("re-enqueueing a dead letter"):
            if record.event_type == NOTIFICATION_TYPE and self.enqueue_notify is not None:
                self.enqueue_notify(record.claims)
                return f"webhook {record.id} to the app"
            if record.event_type == CONVERGE_CUSTOMER_ACTOR and record.customer_id:
                self.enqueue_converge(record.customer_id, "replay")
                return f"re-converge of customer {record.customer_id}"
            own = _own_message(record)
            if own is not None and self.send is not None:
                self.send(own)
                return f"{own.actor_name} message"
            self.enqueue_event(record.claims, {"replayed": True, "received_at": time.time()}, 0)
            return f"{record.event_type} event"

    def _note(self, record: DeadLetter) -> None:
        if self.history is not None and record.customer_id:
            self.history.add(record.customer_id, entry("replayed", reason=record.reason, event_id=record.id,
                                                       type=record.event_type, by=self.by))  # fmt: skip


def _own_message(record: DeadLetter) -> dramatiq.Message[Any] | None:
    """The failed message itself, for an actor that takes no event (worker/runtime/middleware.py `claims_of`)."""
    args = record.claims.get("args")
    if not record.event_type or not isinstance(args, list) or "event_id" in record.claims:
        return None
    return own_message(record.event_type, args)
