"""A forked process serving the sum of every worker process's metrics (prometheus multiprocess mode).

Started by the launcher with `--fork-function worker.entrypoints.metrics_server:run` when
`ROLESYNC_WORKER_METRICS_PORT` is set; serves `GET /metrics` on `ROLESYNC_WORKER_METRICS_HOST` (0.0.0.0
unless set):<port>, with the queue
backlog (worker/runtime/backlog.py) read from Redis at each scrape for the autoscaler.
"""

from __future__ import annotations

import functools
import time

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector

from common.infra.connections import redis_client
from common.settings import Settings
from worker.runtime.backlog import BacklogCollector

# A scrape must answer well inside Prometheus' default 10 s scrape timeout, Redis down or not.
BACKLOG_TIMEOUT_S = 3.0


def run() -> None:
    settings = Settings.from_env()
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    client = functools.cache(functools.partial(redis_client, settings, timeout_s=BACKLOG_TIMEOUT_S))
    registry.register(BacklogCollector(client))
    start_http_server(settings.worker_metrics_port, addr=settings.worker_metrics_host, registry=registry)
    while True:
        time.sleep(3600)
