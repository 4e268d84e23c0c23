"""Messages an on-call command sends to the worker fleet, on a broker built for the command.

Events go through the worker's own `enqueue_to_broker` (the one parked-event replays use), bound to
an explicit broker rather than Dramatiq's global one; converge passes by name, like the ingest.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from dramatiq.brokers.redis import RedisBroker

from common.messages import converge_message
from worker.customers.park import Enqueue
from worker.entrypoints.bootstrap import enqueue_to_broker, notify_on_broker
from worker.outputs.notify import Send


def event_enqueuer(broker: RedisBroker) -> Enqueue:
    return partial(enqueue_to_broker, broker=broker)


def bulk_event_enqueuer(broker: RedisBroker) -> Enqueue:
    """Events replayed in bulk (dead letters): they queue behind fresh events (docs/deploy.md)."""
    return partial(enqueue_to_broker, broker=broker, bulk=True)


def converge_enqueuer(broker: RedisBroker) -> Callable[[str, str], None]:
    def enqueue(customer_id: str, reason: str) -> None:
        broker.enqueue(converge_message(customer_id, reason))

    return enqueue


def notify_enqueuer(broker: RedisBroker) -> Send:
    """Webhooks to the app, sent again as they were (their webhook id too)."""
    return partial(notify_on_broker, broker=broker)
