"""The overview: what `rolesync status --json` knows, from the same code (ops/status.py), refreshing itself, and
the last hour per minute (common/infra/minute_counts.py) drawn as SVG (console/chart.py)."""

from __future__ import annotations

import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from common.infra import minute_counts
from console import chart
from console.frame import render
from console.parts import Parts
from console.session import Session
from ops import status

REFRESH_S = 10  # the page reloads itself (a meta refresh: no script)


async def overview(request: Request, parts: Parts, session: Session) -> Response:
    found = await run_in_threadpool(status.gather, parts.stores, parts.settings)
    counts = await run_in_threadpool(minute_counts.last_hour, parts.stores.redis, time.time())
    return render(request, "overview.html", session, found=found, refresh_s=REFRESH_S, panels=chart.panels(counts),
                  chart_size=(chart.WIDTH, chart.HEIGHT))  # fmt: skip
