"""Real uvicorn servers in background threads: a JWKS endpoint we can rotate or take down, and the ingest."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.procs import free_port, wait_until


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Run `app` under a real uvicorn on a free port; yield its base URL; shut it down gracefully."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), timeout=10, what="uvicorn to start")
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass
class JwksEndpoint:
    """A tenant JWKS whose document, availability and fetch count the test controls."""

    document: dict[str, Any]
    up: bool = True
    fetches: int = 0
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def serve(self, request: Request) -> Response:
        with self._lock:
            self.fetches += 1
        if not self.up:
            return Response("down for maintenance", status_code=503)
        return JSONResponse(self.document)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/.well-known/jwks.json", self.serve)])
