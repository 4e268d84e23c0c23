"""The worker's two actors: decode the message, call a plain handler, map failures to retries.

Import only after `worker.broker.setup()` (the Dramatiq CLI does this for
`dramatiq worker.broker:setup worker.actors`): `@dramatiq.actor` binds to the global broker at
decoration time and would otherwise silently build one on localhost.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

import dramatiq
import dramatiq.broker
import structlog
from dramatiq.middleware import CurrentMessage

from common.errors import PermanentError, RetryableError
from common.messages import (
    BULK_PRIORITY,
    BULK_QUEUE,
    CONVERGE_CUSTOMER_ACTOR,
    CONVERGE_QUEUE,
    EVENTS_QUEUE,
    HANDLE_BULK_EVENT_ACTOR,
    HANDLE_EVENT_ACTOR,
    REBUILD_INDEX_ACTOR,
    REBUILD_QUEUE,
)
from common.settings import Settings
from worker import bootstrap, handlers, metrics
from worker.ratelimit import bulk_calls
from worker.retry_policy import MIN_BACKOFF_MS, retry_horizon_s
from worker.retrying import next_step, retry_when

if dramatiq.broker.global_broker is None:
    raise RuntimeError(
        "worker.actors imported before worker.broker.setup(); run: dramatiq worker.broker:setup worker.actors"
    )

log = structlog.get_logger(__name__)
_settings = Settings.from_env()  # environment only; no I/O
TIME_LIMIT_MS = 50_000  # below the customer lease (worker/coalesce.py LEASE_MS) so a pass never outlives it
_horizon_s = retry_horizon_s(
    _settings.max_retries, min_backoff_ms=MIN_BACKOFF_MS, max_backoff_ms=_settings.max_backoff_ms
)
ACTOR_OPTIONS: dict[str, Any] = {
    "max_retries": _settings.max_retries,
    "min_backoff": MIN_BACKOFF_MS,
    "max_backoff": _settings.max_backoff_ms,
    "retry_when": partial(retry_when, max_retries=_settings.max_retries),
    "throws": (PermanentError,),
    "time_limit": TIME_LIMIT_MS,
    "max_age": int(max(24 * 3600, 2 * _horizon_s) * 1000),
}
# A rebuild chunk stops starting Kinde calls after worker/rebuild.py CHUNK_S; the limit only has to
# outlast that plus one slow call, and stays below the rebuild lease (worker/rebuild_store.py LEASE_MS).
REBUILD_TIME_LIMIT_MS = 120_000
REBUILD_OPTIONS: dict[str, Any] = {**ACTOR_OPTIONS, "time_limit": REBUILD_TIME_LIMIT_MS}


def attempt(kind: str, run: Callable[[], str]) -> None:
    """Run a handler; its outcome is counted and logged here because actors return nothing."""
    try:
        outcome = run()
    except RetryableError as exc:
        message = CurrentMessage.get_current_message()
        options = message.options if message is not None else {}
        raise next_step(
            exc, options, max_retries=_settings.max_retries, max_backoff_ms=_settings.max_backoff_ms
        ) from exc
    metrics.EVENTS.labels(kind, outcome).inc()
    log.info("event_handled", outcome=outcome)


@dramatiq.actor(actor_name=HANDLE_EVENT_ACTOR, queue_name=EVENTS_QUEUE, **ACTOR_OPTIONS)
def handle_event(claims: dict[str, Any], meta: dict[str, Any]) -> None:
    attempt(metrics.family(str(claims.get("type"))), lambda: handlers.handle_event(bootstrap.deps(), claims, meta))


# Bulk work (sweeps, bursts, replays) comes in thousands at once: a worker thread takes a fresh event
# first (Dramatiq runs the prefetched message of the lowest priority number first; events have the
# default, 0), and its Kinde calls leave a reserve of the shared rate to fresh ones (worker/ratelimit.py).
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


@dramatiq.actor(actor_name=REBUILD_INDEX_ACTOR, queue_name=REBUILD_QUEUE, priority=SWEEP_PRIORITY,
                **REBUILD_OPTIONS)  # fmt: skip
def rebuild_index(holder: str) -> None:
    with bulk_calls():
        attempt("rebuild", lambda: bootstrap.deps().resolver.rebuilds.run_chunk(holder))
