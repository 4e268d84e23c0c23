"""The worker's actors: decode the message, call a plain handler, count and log its outcome.

Every failure goes on to worker/runtime/durable_retries.py, which hands it to worker/runtime/retry_policy.py, the
one place that decides between a retry and a dead letter.

Import only after `worker.runtime.broker.setup()` (the Dramatiq CLI does this for
`dramatiq worker.runtime.broker:setup worker.runtime.actors`): `@dramatiq.actor` binds to the global broker at
decoration time and would otherwise silently build one on localhost.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import dramatiq
import dramatiq.broker
import structlog
from dramatiq.middleware import CurrentMessage

from common.errors import PermanentError
from common.infra import tracing
from common.infra.deadletters import NOTIFY_FAILED
from common.messages import (
    BULK_PRIORITY,
    BULK_QUEUE,
    CONVERGE_CUSTOMER_ACTOR,
    CONVERGE_QUEUE,
    CONVERGE_TARGET_ACTOR,
    EVENTS_QUEUE,
    GUARD_QUEUE,
    HANDLE_BULK_EVENT_ACTOR,
    HANDLE_EVENT_ACTOR,
    NOTIFY_APP_ACTOR,
    NOTIFY_QUEUE,
    REBUILD_INDEX_ACTOR,
    REBUILD_QUEUE,
    REFRESH_MEMBERS_ACTOR,
)
from common.settings import Settings
from worker.convergence.members import refresh_members
from worker.entrypoints import bootstrap
from worker.events import handlers
from worker.kinde.ratelimit import bulk_calls
from worker.runtime import metrics
from worker.runtime.durable_retries import retried_quietly
from worker.runtime.retry_policy import MIN_BACKOFF_MS, retry_horizon_s

if dramatiq.broker.global_broker is None:
    raise RuntimeError(
        "worker.runtime.actors imported before worker.runtime.broker.setup(); "
        "run: dramatiq worker.runtime.broker:setup worker.runtime.actors"
    )

log = structlog.get_logger(__name__)
_settings = Settings.from_env()  # environment only; no I/O
TIME_LIMIT_MS = 50_000  # below the customer lease (worker/events/coalesce.py LEASE_MS) so a pass never outlives it
_horizon_s = retry_horizon_s(
    _settings.max_retries, min_backoff_ms=MIN_BACKOFF_MS, max_backoff_ms=_settings.max_backoff_ms
)
ACTOR_OPTIONS: dict[str, Any] = {
    "max_retries": _settings.max_retries,
    "min_backoff": MIN_BACKOFF_MS,
    "max_backoff": _settings.max_backoff_ms,
    "throws": (PermanentError,),  # what retry_policy.decide does with them anyway: a dead letter at once
    "time_limit": TIME_LIMIT_MS,
    "max_age": int(max(24 * 3600, 2 * _horizon_s) * 1000),
}
# A rebuild chunk stops starting Kinde calls after worker/customers/rebuild.py CHUNK_S; the limit only has to
# outlast that plus one slow call, and stays below the rebuild lease (worker/customers/rebuild_store.py LEASE_MS).
REBUILD_TIME_LIMIT_MS = 120_000
REBUILD_OPTIONS: dict[str, Any] = {**ACTOR_OPTIONS, "time_limit": REBUILD_TIME_LIMIT_MS}
# One POST with its own timeout (ROLESYNC_NOTIFY_TIMEOUT_S); its own failure budget, which spent is `notify_failed`.
NOTIFY_TIME_LIMIT_MS = int(_settings.notify_timeout_s * 1000) + 20_000
NOTIFY_OPTIONS: dict[str, Any] = {
    **ACTOR_OPTIONS,
    "max_retries": _settings.notify_max_retries,
    "exhausted_as": NOTIFY_FAILED,
    "time_limit": NOTIFY_TIME_LIMIT_MS,
}


def attempt(kind: str, run: Callable[[], str]) -> None:
    """Run a handler; its outcome is counted and logged here because actors return nothing."""
    with retried_quietly():
        outcome = run()
    metrics.EVENTS.labels(kind, outcome).inc()
    tracing.annotate(outcome=outcome)
    log.info("event_handled", outcome=outcome)


@dramatiq.actor(actor_name=HANDLE_EVENT_ACTOR, queue_name=EVENTS_QUEUE, **ACTOR_OPTIONS)
def handle_event(claims: dict[str, Any], meta: dict[str, Any]) -> None:
    attempt(metrics.family(str(claims.get("type"))), lambda: handlers.handle_event(bootstrap.deps(), claims, meta))


# Bulk work (sweeps, bursts, replays) comes in thousands at once: a worker thread takes a fresh event
# first (Dramatiq runs the prefetched message of the lowest priority number first; events have the
# default, 0), and its Kinde calls leave a reserve of the shared rate to fresh ones (worker/kinde/ratelimit.py).
SWEEP_PRIORITY = BULK_PRIORITY


@dramatiq.actor(actor_name=HANDLE_BULK_EVENT_ACTOR, queue_name=BULK_QUEUE, priority=SWEEP_PRIORITY,
                **ACTOR_OPTIONS)  # fmt: skip
def handle_bulk_event(claims: dict[str, Any], meta: dict[str, Any]) -> None:
    with bulk_calls():
        handle_event.fn(claims, meta)


@dramatiq.actor(actor_name=CONVERGE_CUSTOMER_ACTOR, queue_name=CONVERGE_QUEUE, priority=SWEEP_PRIORITY,
                **ACTOR_OPTIONS)  # fmt: skip
def converge_customer(customer_id: str, reason: str) -> None:
    message = CurrentMessage.get_current_message()
    request_id = message.message_id if message is not None else uuid.uuid4().hex
    with bulk_calls():
        attempt("converge", lambda: handlers.converge_customer(bootstrap.deps(), customer_id, reason, request_id))


@dramatiq.actor(actor_name=CONVERGE_TARGET_ACTOR, queue_name=CONVERGE_QUEUE, **ACTOR_OPTIONS)
def converge_target(org_code: str, user_id: str, reason: str) -> None:
    """A hand grant was added, removed or ended (worker/sweeps/grant_schedule.py): someone waits, so not bulk."""
    attempt("converge_target", lambda: handlers.converge_target(bootstrap.deps(), org_code, user_id, reason))


@dramatiq.actor(actor_name=REBUILD_INDEX_ACTOR, queue_name=REBUILD_QUEUE, priority=SWEEP_PRIORITY,
                **REBUILD_OPTIONS)  # fmt: skip
def rebuild_index(holder: str) -> None:
    with bulk_calls():
        attempt("rebuild", lambda: bootstrap.deps().resolver.rebuilds.run_chunk(holder))


@dramatiq.actor(actor_name=NOTIFY_APP_ACTOR, queue_name=NOTIFY_QUEUE, **NOTIFY_OPTIONS)
def notify_app(notification: dict[str, Any]) -> None:
    """POST one `entitlements.updated` webhook to the app (worker/outputs/notify.py queued it after a pass)."""
    with retried_quietly():
        status = bootstrap.webhook_sender().deliver(notification)
    metrics.EVENTS.labels("notify", "delivered").inc()
    log.info("notification_delivered", status=status)


# A member listing for the plan-selection guard: best effort (it never raises), so never retried. No age
# limit: an aged-out message would be recorded as a dead letter; a stale request is skipped instead.
GUARD_OPTIONS: dict[str, Any] = {"max_retries": 0, "time_limit": TIME_LIMIT_MS}


@dramatiq.actor(actor_name=REFRESH_MEMBERS_ACTOR, queue_name=GUARD_QUEUE, **GUARD_OPTIONS)
def refresh_org_members(org_code: str) -> None:
    deps, message = bootstrap.deps(), CurrentMessage.get_current_message()
    asked_at = message.message_timestamp / 1000 if message is not None else 0.0
    cache = deps.members
    if cache is not None:
        attempt("guard", lambda: refresh_members(deps.resolver.kinde, cache, org_code, asked_at=asked_at))
