"""One log line and the metrics for each answered webhook.

Only verified claims are logged (event_id, type); the raw token and an unverified body never
are. The `webhook-id` header is unsigned, so it is trimmed before it reaches a log line.
"""

from __future__ import annotations

import logging

from common.infra.logs import SteadyLogger
from ingest.metrics import UNVERIFIED_TYPE, Metrics
from ingest.webhook import Outcome

log = SteadyLogger("ingest")  # one line per webhook: bound once, not per line

EVENT_NAMES = {
    "queued": "webhook_enqueued",
    "duplicate": "webhook_deduplicated",
    "ignored": "webhook_ignored",
    "rejected": "webhook_rejected",
    "too_large": "webhook_rejected",
    "unavailable": "webhook_deferred",
    "disconnected": "webhook_abandoned",
    "throttled": "webhook_throttled",
}
MAX_HEADER_CHARS = 128


def clean_header(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) <= MAX_HEADER_CHARS and value.isprintable():  # what Kinde sends: nothing to trim
        return value
    return "".join(ch for ch in value[:MAX_HEADER_CHARS] if ch.isprintable())


def observe(outcome: Outcome, *, metrics: Metrics, webhook_id: str | None, duration_s: float) -> None:
    event_type = outcome.claims.get("type")
    _count(outcome, metrics, event_type)
    log.log(
        _level(outcome),
        EVENT_NAMES[outcome.outcome],
        event_id=outcome.claims.get("event_id"),
        type=event_type,
        webhook_id=webhook_id,
        outcome=outcome.outcome,
        reason=outcome.reason,
        status=outcome.status_code,
        duration_ms=round(duration_s * 1000, 3),
    )


def _count(outcome: Outcome, metrics: Metrics, event_type: str | None) -> None:
    metrics.count_webhook(outcome.outcome, event_type or UNVERIFIED_TYPE)
    if outcome.outcome in ("rejected", "too_large") and outcome.reason:
        metrics.verification_failures.labels(reason=outcome.reason).inc()
    if outcome.enqueue_s is not None:
        metrics.enqueue_seconds.observe(outcome.enqueue_s)


def _level(outcome: Outcome) -> int:
    if outcome.status_code == 200:
        return logging.INFO
    if outcome.outcome == "throttled":  # a flood's every request: counted in the metrics, logged at debug
        return logging.DEBUG
    return logging.WARNING if outcome.status_code < 500 else logging.ERROR
