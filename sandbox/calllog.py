"""Records every Management API call (method, path, query, status, time) for tests and the log.

A pure ASGI middleware, so it sees the final status even of error responses, and never buffers
bodies. An answer the fault injection made (its `X-Sandbox-Fault` header) is recorded with `"fault"`.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.faults import FAULT_HEADER

log = structlog.get_logger("sandbox.calls")
API_PREFIX = "/api/v1"
FAULT_HEADER_RAW = FAULT_HEADER.lower().encode()


class CallLog:
    def __init__(self, app: ASGIApp, calls: list[dict[str, Any]]) -> None:
        self.app = app
        self.calls = calls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        status: dict[str, Any] = {"code": 0, "fault": None}

        async def remember(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["fault"] = dict(message.get("headers") or []).get(FAULT_HEADER_RAW)
            await send(message)

        try:
            await self.app(scope, receive, remember)
        finally:
            self._record(scope, status["code"], status["fault"])

    def _record(self, scope: Scope, status: int, fault: bytes | None) -> None:
        call: dict[str, Any] = {
            "method": scope["method"],
            "path": scope["path"],
            "query": scope["query_string"].decode("latin-1"),
            "status": status,
            "time": time.time(),
        }
        if fault is not None:
            call["fault"] = fault.decode("latin-1")
        self.calls.append(call)
        log.info("management_call_answered", **call)
