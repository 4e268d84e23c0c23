"""`rolesync ingest`: the app under uvicorn, JSON logs, graceful shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

import uvicorn

from common.infra import tracing
from common.infra.insecure_settings import log_insecure_settings
from common.infra.layout import check_at_start
from common.infra.logs import configure_logging
from common.infra.metrics_port import serve_metrics
from common.settings import Settings
from ingest.app import create_app
from ingest.metrics import Metrics

GRACEFUL_SHUTDOWN_S = 10  # in-flight webhooks finish; Kinde retries any we could not answer


def serve(settings: Settings, *, host: str, port: int, metrics_port: int = 0, metrics_host: str = "") -> None:
    """`metrics_port` > 0 moves `/metrics` off the public port onto that one (on `metrics_host`, else `host`)."""
    configure_logging(settings.log_level)
    log_insecure_settings(settings)
    check_at_start(settings)  # before serving: a newer Redis layout stops the ingest (common/infra/layout.py)
    tracing.start("rolesync-ingest", settings.tracing)
    metrics = Metrics()
    if metrics_port:
        serve_metrics(metrics.registry, host=metrics_host or host, port=metrics_port)
    config = uvicorn.Config(
        create_app(settings, metrics=metrics, metrics_route=not metrics_port),
        host=host,
        port=port,
        log_config=None,  # keep common.infra.logs' JSON handler instead of uvicorn's own formatters
        access_log=False,  # one line per webhook is logged by the app itself
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        lifespan="on",
    )
    try:
        uvicorn.Server(config).run()
    finally:
        tracing.stop()  # send the spans still buffered
