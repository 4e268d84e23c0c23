"""The overview: what `rolesync status --json` knows, from the same code (ops/status.py), refreshing itself."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from console.frame import render
from console.parts import Parts
from console.session import Session
from ops import status

REFRESH_S = 10  # the page reloads itself (a meta refresh: no script)


async def overview(request: Request, parts: Parts, session: Session) -> Response:
    found = await run_in_threadpool(status.gather, parts.stores, parts.settings)
    return render(request, "overview.html", session, found=found, refresh_s=REFRESH_S)
