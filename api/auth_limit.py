"""Failed authentications limited per client address: after N 401s within a window, 429 until one ages out.

Every `/v1` route counts: a bearer key that matches none (`/v1/users/…`, `/v1/customers/…`) and a wrong
workflow secret (`/v1/plan-selection`) are both a failed authentication. An address with
ROLESYNC_API_AUTH_FAILURES of them within the last ROLESYNC_API_AUTH_WINDOW_S seconds is answered 429
with Retry-After (seconds until its oldest counted failure leaves the window) **before** any key is
compared, so a blocked guesser learns nothing, not even from a right guess. Other addresses, and their
valid keys, are untouched. A 403 (a valid key without the scope) is not a failure.

In-process, not in Redis (common/infra/failure_limit.py): the failure path is the one under attack, so it costs
no Redis round trip and keeps working while Redis is down; the state is small (one deque of ≤ N timestamps
per address, at most MAX_ADDRESSES addresses, the least recently failing dropped first). The price: each API pod
counts on its own, so an address gets up to N times the pods tries per window (keys of ≥ 128 bits make that
irrelevant to guessing; the limit is for the CPU and log noise of a flood and to slow scanners).

The address is the ASGI client's: behind a proxy or an ingress, uvicorn puts the `X-Forwarded-For`
client there only for proxies listed in FORWARDED_ALLOW_IPS (uvicorn's variable: the ingress
controller's addresses or CIDR). Without that every caller shares the ingress's address and one
guesser blocks them all (docs/security.md).
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import views
from api.metrics import Metrics
from common.infra.failure_limit import FailureLimiter

PREFIX = "/v1/"
WORKFLOW_PATH = "/v1/plan-selection"


class AuthFailureLimit:
    """ASGI middleware: counts each `/v1` 401 against the client's address and refuses a blocked one."""

    def __init__(self, app: ASGIApp, *, limiter: FailureLimiter, metrics: Metrics) -> None:
        self.app, self.limiter, self.metrics = app, limiter, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(PREFIX) or not self.limiter.enabled:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = client[0] if client else "unknown"
        surface = "workflow_secret" if path == WORKFLOW_PATH else "api_key"
        wait = self.limiter.retry_after(address)
        if wait is not None:
            self.metrics.auth_throttled.labels(surface).inc()
            body = views.error("too_many_failed_authentications",
                               f"too many failed authentications from this address; retry in {wait} s")  # fmt: skip
            await JSONResponse(body, status_code=429, headers={"Retry-After": str(wait)})(scope, receive, send)
            return

        async def counting(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                self.limiter.failed(address)
                self.metrics.auth_failures.labels(surface).inc()
            await send(message)

        await self.app(scope, receive, counting)
