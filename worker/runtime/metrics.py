"""The worker's Prometheus metrics.

Worker processes are forked by the Dramatiq CLI, so metrics use prometheus-client's multiprocess
mode: the launcher points `PROMETHEUS_MULTIPROC_DIR` at a fresh directory before the processes
start, every process writes its samples there, and one forked exposition process
(`worker.entrypoints.metrics_server`) serves their sum on `ROLESYNC_WORKER_METRICS_PORT`. Without that
variable the metrics still count in-process (tests read them) and nothing is served.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EVENTS = Counter("rolesync_worker_events_total", "Events handled, by type family and outcome", ["kind", "outcome"])
KINDE_CALLS = Counter(
    "rolesync_kinde_calls_total", "Kinde API calls, by endpoint and HTTP status", ["endpoint", "status"]
)
KINDE_429 = Counter("rolesync_kinde_rate_limited_total", "Kinde 429 answers")
TOKEN_FETCHES = Counter("rolesync_kinde_token_fetches_total", "M2M tokens fetched (each one is billable)")
SHADOW_WRITES = Counter(
    "rolesync_shadow_writes_total", "Role writes a pass would have made in shadow mode (ROLESYNC_MODE=shadow)", ["op"]
)
DEAD_LETTERS = Counter("rolesync_dead_letters_total", "Events dead-lettered, by reason", ["reason"])
LEFT_TARGETS_REFUSED = Counter(
    "rolesync_left_targets_refused_total", "Targets a customer left that Kinde refused to converge (logged, let go)"
)
# By queue: a bulk-routed webhook waits behind fresh ones by design (docs/deploy.md, "Bulk without
# starvation"), so the lag that pages (docs/alerts.yml) is the fresh queue's alone.
QUEUE_LAG = Histogram(
    "rolesync_queue_lag_seconds",
    "From the ingest receiving a webhook to a worker starting on it, by queue",
    ["queue"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)
EVENT_TO_CONVERGED = Histogram(
    "rolesync_event_to_converged_seconds",
    "From the event's own `timestamp` to the customer's roles being converged",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 6 * 3600),
)


def family(event_type: str) -> str:
    """Bounded label values: `customer`, `user`, `organization`, or `other`."""
    head = event_type.split(".", 1)[0]
    return head if head in ("customer", "user", "organization") else "other"
