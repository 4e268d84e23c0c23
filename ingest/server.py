"""`rolesync ingest`: the app under uvicorn, JSON logs, graceful shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

import uvicorn

from common.logs import configure_logging
from common.settings import Settings
from ingest.app import create_app

GRACEFUL_SHUTDOWN_S = 10  # in-flight webhooks finish; Kinde retries any we could not answer


def serve(settings: Settings, *, host: str, port: int) -> None:
    configure_logging(settings.log_level)
    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        log_config=None,  # keep common.logs' JSON handler instead of uvicorn's own formatters
        access_log=False,  # one line per webhook is logged by the app itself
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        lifespan="on",
    )
    uvicorn.Server(config).run()
