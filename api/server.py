"""`rolesync api`: the read API under uvicorn, JSON logs, graceful shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

import uvicorn

from api.app import create_app
from common.logs import configure_logging
from common.settings import Settings


def serve(settings: Settings, *, host: str, port: int) -> None:
    configure_logging(settings.log_level)
    config = uvicorn.Config(create_app(settings), host=host, port=port, log_config=None, access_log=False,
                            timeout_graceful_shutdown=5, lifespan="on")  # fmt: skip
    uvicorn.Server(config).run()
