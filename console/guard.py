"""The Guard page: the plan-selection guard's last decisions (common/guard/selection_log.py), with their reasons and
the metrics each was judged on (value, limit and where the value came from)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from common.guard import selection_log
from console.frame import render
from console.parts import Parts
from console.session import Session

SHOWN = 50


async def decisions(request: Request, parts: Parts, session: Session) -> Response:
    found = await run_in_threadpool(selection_log.fleet_recent, parts.stores.redis, SHOWN)
    return render(request, "guard.html", session, decisions=found)
