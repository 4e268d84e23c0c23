"""Queue and actor names, and the one message shape the ingest hands to the worker.

Names are explicit constants because Dramatiq defaults them to the function name, and renaming
a function would orphan every message already queued. The ingest builds messages by name, so it
never imports `worker`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import dramatiq

EVENTS_QUEUE = "rolesync-events"
HANDLE_EVENT_ACTOR = "handle_event"
# Bulk events (a webhook burst of existing customers' billing changes, dead-letter replays) run the
# same handler from their own queue, behind fresh ones (docs/deploy.md, "Bulk without starvation").
BULK_QUEUE = "rolesync-bulk"
HANDLE_BULK_EVENT_ACTOR = "handle_bulk_event"
CONVERGE_QUEUE = "rolesync-converge"
CONVERGE_CUSTOMER_ACTOR = "converge_customer"
CONVERGE_TARGET_ACTOR = "converge_target"  # one (org, user) target: a hand grant added, removed or ended
REBUILD_QUEUE = "rolesync-rebuild"
REBUILD_INDEX_ACTOR = "rebuild_index"
NOTIFY_QUEUE = "rolesync-notify"
NOTIFY_APP_ACTOR = "notify_app"
GUARD_QUEUE = "rolesync-guard"
REFRESH_MEMBERS_ACTOR = "refresh_org_members"
# Every queue a worker consumes: the backlog gauge and the recovery sweep must both see each one.
LIVE_QUEUES = (EVENTS_QUEUE, BULK_QUEUE, CONVERGE_QUEUE, REBUILD_QUEUE, NOTIFY_QUEUE, GUARD_QUEUE)
# A webhook's event waits on one of these: fresh, or bulk during a burst (ingest/enqueue.py). Whatever
# watches for events to drain must watch both.
EVENT_QUEUES = (EVENTS_QUEUE, BULK_QUEUE)
# Where customer passes wait: the events and the converge requests (status, doctor, the proofs' idle checks).
PASS_QUEUES = (*EVENT_QUEUES, CONVERGE_QUEUE)
# Queues whose work yields to fresh events, in the worker's threads and at the Kinde rate limit.
BULK_QUEUES = (BULK_QUEUE, CONVERGE_QUEUE, REBUILD_QUEUE)
# Their actors' priority: Dramatiq runs the prefetched message of the lowest number first (fresh: 0).
BULK_PRIORITY = 10
# The message option carrying a W3C trace context ({"traceparent": ...}); workers that do not trace ignore it.
TRACE_OPTION = "otel"


def event_message(
    claims: dict[str, Any],
    webhook_id: str | None,
    received_at: float,
    *,
    bulk: bool = False,
    trace: Mapping[str, str] | None = None,
) -> dramatiq.Message[Any]:
    """The message for one verified webhook: its claims (JSON-safe) and delivery metadata; `trace` is the ingest's
    trace context (common/infra/tracing.py), carried in the options so the worker's spans join the webhook's trace."""
    meta = {"webhook_id": webhook_id, "received_at": received_at}
    return dramatiq.Message(
        queue_name=BULK_QUEUE if bulk else EVENTS_QUEUE,
        actor_name=HANDLE_BULK_EVENT_ACTOR if bulk else HANDLE_EVENT_ACTOR,
        args=(claims, meta),
        kwargs={},
        options={TRACE_OPTION: dict(trace)} if trace else {},
    )


def converge_message(customer_id: str, reason: str) -> dramatiq.Message[Any]:
    """Re-converge one customer from Kinde's state (reconcile sweeps, replays of converge dead letters)."""
    return dramatiq.Message(
        queue_name=CONVERGE_QUEUE,
        actor_name=CONVERGE_CUSTOMER_ACTOR,
        args=(customer_id, reason),
        kwargs={},
        options={},
    )


def converge_target_message(org_code: str, user_id: str, reason: str) -> dramatiq.Message[Any]:
    """Converge one (org, user) target from current state (org "" = the B2C org): a hand grant changed."""
    return dramatiq.Message(
        queue_name=CONVERGE_QUEUE,
        actor_name=CONVERGE_TARGET_ACTOR,
        args=(org_code, user_id, reason),
        kwargs={},
        options={},
    )


def rebuild_message(holder: str) -> dramatiq.Message[Any]:
    """Run the next chunk of the customer-index rebuild as `holder` (worker/customers/rebuild.py)."""
    return dramatiq.Message(
        queue_name=REBUILD_QUEUE,
        actor_name=REBUILD_INDEX_ACTOR,
        args=(holder,),
        kwargs={},
        options={},
    )


def notify_message(notification: dict[str, Any]) -> dramatiq.Message[Any]:
    """POST one signed `entitlements.updated` webhook to the app (worker/outputs/notify_delivery.py)."""
    return dramatiq.Message(
        queue_name=NOTIFY_QUEUE,
        actor_name=NOTIFY_APP_ACTOR,
        args=(notification,),
        kwargs={},
        options={},
    )


def refresh_members_message(org_code: str) -> dramatiq.Message[Any]:
    """Read the org's member listing into the guard's member cache (common/guard/members.py)."""
    return dramatiq.Message(
        queue_name=GUARD_QUEUE,
        actor_name=REFRESH_MEMBERS_ACTOR,
        args=(org_code,),
        kwargs={},
        options={},
    )


def own_message(actor_name: str, args: list[Any]) -> dramatiq.Message[Any] | None:
    """A dead-lettered message of an actor that takes no event claims, sent again as it was (worker/runtime/replay.py);
    None for an actor whose replay is not its own message (events, converge passes, webhooks to the app)."""
    builders: dict[str, Callable[..., dramatiq.Message[Any]]] = {
        REBUILD_INDEX_ACTOR: rebuild_message,
        REFRESH_MEMBERS_ACTOR: refresh_members_message,
        CONVERGE_TARGET_ACTOR: converge_target_message,
    }
    build = builders.get(actor_name)
    return build(*args) if build is not None else None
