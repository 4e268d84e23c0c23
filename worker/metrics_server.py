"""A forked process serving the sum of every worker process's metrics (prometheus multiprocess mode).

Started by the launcher with `--fork-function worker.metrics_server:run` when
`ROLESYNC_WORKER_METRICS_PORT` is set; serves `GET /metrics` on 0.0.0.0:<port>.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector

from common.settings import Settings


def run() -> None:
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    start_http_server(Settings.from_env().worker_metrics_port, registry=registry)
    while True:
        time.sleep(3600)
