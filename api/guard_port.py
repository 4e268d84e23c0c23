"""`rolesync api --guard-port`: the plan-selection guard on a listener of its own, on an event loop of its own.

On one port, the guard shares the API's event loop with every read. The in-flight bound (api/concurrency.py)
keeps the reads' work in Redis from queueing ahead of a decision, but a flood still costs the loop an HTTP
parse and a 503 for every shed request, and the guard's request waits its turn behind them: with `rolesync
api` flooded by 400 read connections (tests/api/test_guard_under_load.py), the slowest decision of a run
took over 1 s in six runs of eight (up to 4.1 s) on the 2-core development box. Here the guard gets a
uvicorn server of its own in a thread of its own, with its own event loop, Redis client, in-flight budget
and failed-authentication count; the read flood then costs it only a share of the interpreter's lock
(handed over every 5 ms), and the same flood left the slowest decision of a run at 0.06-0.2 s
(docs/security.md has the runs). The metrics are shared.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette

from common.errors import ConfigError

STOP_TIMEOUT_S = 10.0


@dataclass
class GuardListener:
    """The guard's uvicorn server and the thread its event loop runs on."""

    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=STOP_TIMEOUT_S)


def start_guard_listener(app: Starlette, *, host: str, port: int) -> GuardListener:
    """Serve `app` (the guard's routes) on host:port from a thread of its own; returns once it listens."""
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False,
                            timeout_graceful_shutdown=5, lifespan="on")  # fmt: skip
    server = uvicorn.Server(config)  # signals stay with the main server (uvicorn: main thread only)
    thread = threading.Thread(target=server.run, name="rolesync-guard", daemon=True)
    thread.start()
    _wait_started(server, thread)
    return GuardListener(server, thread)


def _wait_started(server: uvicorn.Server, thread: threading.Thread) -> None:
    while not server.started:
        if not thread.is_alive():
            raise ConfigError(f"the guard's listener did not start on port {server.config.port}: see the log above")
        thread.join(timeout=0.05)
