"""`rolesync api`: the read API under uvicorn, JSON logs, graceful shutdown on SIGTERM/SIGINT; `--workers N`:
N processes on the port (api/workers.py)."""

from __future__ import annotations

import uvicorn

from api.app import GUARD, READS, create_app
from api.guard_port import start_guard_listener
from api.metrics import Metrics
from api.workers import RoutesOf, serve_workers
from common.infra.insecure_settings import log_insecure_settings
from common.infra.layout import check_at_start
from common.infra.logs import configure_logging
from common.infra.metrics_port import serve_metrics
from common.settings import Settings


def serve(settings: Settings, *, host: str, port: int, metrics_port: int = 0, metrics_host: str = "",
          guard_port: int = 0, more: RoutesOf = lambda _: (), workers: int = 1) -> None:  # fmt: skip
    """`metrics_port` > 0 moves `/metrics` off the public port onto that one (on `metrics_host`, else `host`);
    `guard_port` > 0 moves `POST /v1/plan-selection` onto that one, on an event loop of its own (api/guard_port.py);
    `more` makes the routes served beside the reads (the console, mounted by cli/main.py): a module-level function
    when `workers` > 1, since each worker process makes its own."""
    configure_logging(settings.log_level)
    log_insecure_settings(settings)
    check_at_start(settings)  # before serving: a newer Redis layout stops the API (common/infra/layout.py)
    if workers > 1:
        serve_workers(settings, host=host, port=port, workers=workers, metrics_port=metrics_port,
                      metrics_host=metrics_host, guard_port=guard_port, more=more)  # fmt: skip
        return
    metrics = Metrics()
    if metrics_port:
        serve_metrics(metrics.registry, host=metrics_host or host, port=metrics_port)
    guard = None
    if guard_port:
        guard_app = create_app(settings, metrics=metrics, metrics_route=False, serves=(GUARD,))
        guard = start_guard_listener(guard_app, host=host, port=guard_port)
    app = create_app(settings, metrics=metrics, metrics_route=not metrics_port,
                     serves=(READS,) if guard_port else (READS, GUARD), more=more(settings))  # fmt: skip
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False,
                            timeout_graceful_shutdown=5, lifespan="on")  # fmt: skip
    try:
        uvicorn.Server(config).run()
    finally:
        if guard is not None:
            guard.stop()
