"""Sending a dead letter back through the worker: on-call's `rolesync dlq replay` and the scope probe.

Replay re-enqueues the record's event for `handle_event` (or, for a failed `converge_customer`
pass, that customer's pass) and removes the record only once the message is on the broker: a
crash in between duplicates the message, which the worker's coalescing absorbs, rather than
losing it. Replaying cannot regress roles: the worker re-reads Kinde's current state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from common.connections import redis_errors
from common.deadletters import DeadLetter, DeadLetterStore
from common.messages import CONVERGE_CUSTOMER_ACTOR
from worker.park import Enqueue

EnqueueConverge = Callable[[str, str], None]  # (customer_id, reason)


@dataclass(frozen=True)
class Replayer:
    store: DeadLetterStore
    enqueue_event: Enqueue
    enqueue_converge: EnqueueConverge

    def replay(self, record: DeadLetter) -> str:
        """Enqueue, then remove; a sentence saying what was sent."""
        with redis_errors("re-enqueueing a dead letter"):
            if record.event_type == CONVERGE_CUSTOMER_ACTOR and record.customer_id:
                self.enqueue_converge(record.customer_id, "replay")
                what = f"re-converge of customer {record.customer_id}"
            else:
                self.enqueue_event(record.claims, {"replayed": True, "received_at": time.time()}, 0)
                what = f"{record.event_type} event"
        self.store.remove(record.id)
        return f"{record.id}: {what} re-enqueued"
