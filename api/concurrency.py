"""Requests in flight bounded, with a fast 503 beyond the bound; the plan-selection guard has a budget of its own.

Every `/v1` request takes a slot for as long as the app handles it. The reads (and usage reports) share
ROLESYNC_API_MAX_IN_FLIGHT slots; `POST /v1/plan-selection` has as many again, so a flood of reads
cannot take the guard's. A request that finds its budget full is answered 503 with `Retry-After: 1`
at once, before authentication or any Redis call: it costs the API almost nothing, and the requests
already in flight (and the guard's) do not queue behind it on the event loop or on Redis, which
the reads and the guard share. Counted in `rolesync_api_shed_total{budget}`.

Why in flight rather than per second: what hurts the guard is the work queued ahead of it (Redis is one
queue for every read), and a bound on requests in flight bounds that queue whatever each costs.
Per pod: the fleet admits the bound times the pods.
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from api import views
from api.metrics import Metrics

PREFIX = "/v1/"
GUARD_PATH = "/v1/plan-selection"


class ConcurrencyLimit:
    """ASGI middleware: at most `limit` `/v1` reads and `limit` guard calls in flight; 0 = no bound."""

    def __init__(self, app: ASGIApp, *, limit: int, metrics: Metrics) -> None:
        self.app, self.limit, self.metrics = app, limit, metrics
        self.in_flight = {"reads": 0, "guard": 0}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(PREFIX) or self.limit <= 0:
            await self.app(scope, receive, send)
            return
        budget = "guard" if path == GUARD_PATH else "reads"
        if self.in_flight[budget] >= self.limit:
            self.metrics.shed.labels(budget).inc()
            body = views.error("overloaded", "too many requests in flight; retry in a second")
            await JSONResponse(body, status_code=503, headers={"Retry-After": "1"})(scope, receive, send)
            return
        self.in_flight[budget] += 1  # one event loop: no lock needed between the check and the count
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight[budget] -= 1
