"""`rolesync api`: the read API under uvicorn, JSON logs, graceful shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

from collections.abc import Sequence

import uvicorn
from starlette.routing import BaseRoute

from api.app import create_app
from api.metrics import Metrics
from common.logs import configure_logging
from common.metrics_port import serve_metrics
from common.settings import Settings


def serve(settings: Settings, *, host: str, port: int, metrics_port: int = 0, metrics_host: str = "",
          more: Sequence[BaseRoute] = ()) -> None:  # fmt: skip
    """`metrics_port` > 0 moves `/metrics` off the public port onto that one (on `metrics_host`, else `host`);
    `more` are routes served beside the API's (the console, mounted by cli/main.py)."""
    configure_logging(settings.log_level)
    metrics = Metrics()
    if metrics_port:
        serve_metrics(metrics.registry, host=metrics_host or host, port=metrics_port)
    app = create_app(settings, metrics=metrics, metrics_route=not metrics_port, more=more)
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False,
                            timeout_graceful_shutdown=5, lifespan="on")  # fmt: skip
    uvicorn.Server(config).run()
