"""Records every Management API call (method, path, query, status, time) for tests and the log.

A pure ASGI middleware, so it sees the final status even of error responses, and never buffers
bodies.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("sandbox.calls")
API_PREFIX = "/api/v1"


class CallLog:
    def __init__(self, app: ASGIApp, calls: list[dict[str, Any]]) -> None:
        self.app = app
        self.calls = calls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        status = {"code": 0}

        async def remember(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, remember)
        finally:
            self._record(scope, status["code"])

    def _record(self, scope: Scope, status: int) -> None:
        call = {
            "method": scope["method"],
            "path": scope["path"],
            "query": scope["query_string"].decode("latin-1"),
            "status": status,
            "time": time.time(),
        }
        self.calls.append(call)
        log.info("management_call_answered", **call)
