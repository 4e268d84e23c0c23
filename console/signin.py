"""Signing in with an API key that has a console scope, and out.

The key is checked as the API checks bearer keys (api/auth.py: constant time, every key compared);
a wrong key counts against the client's address as a failed `/v1` authentication does (the same
FailureLimiter, common/infra/failure_limit.py, with a budget of its own), and a right key without `console` or
`console:write` opens nothing. The key itself is never stored: the cookie names its label
(console/session.py).
"""

from __future__ import annotations

import structlog
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from common.settings import CONSOLE_SCOPES
from console.forms import BadFormError, fields
from console.frame import ROOT, problem, render, same_origin
from console.parts import Parts
from console.session import COOKIE, Session

log = structlog.get_logger(__name__)


async def sign_in_form(request: Request) -> Response:
    return render(request, "sign_in.html", next=_next(request.query_params.get("next", "")))


async def sign_in(request: Request) -> Response:
    parts: Parts = request.app.state.parts
    address = request.client.host if request.client else "unknown"
    wait = parts.limiter.retry_after(address) if parts.limiter.enabled else None
    if wait is not None:
        return problem(request, None, 429, f"Too many failed sign-ins from this address; try again in {wait} s.")
    try:
        given = await fields(request)
    except BadFormError as exc:
        return problem(request, None, 400, str(exc))
    if not same_origin(request):
        return problem(request, None, 403, "Refused: this sign-in did not come from the console.")
    return _answer(request, parts, address, given)


def _answer(request: Request, parts: Parts, address: str, given: dict[str, str]) -> Response:
    caller = parts.keys.by_key(given.get("key", ""))
    if caller is None:
        parts.limiter.failed(address)
        log.warning("console_sign_in_refused", why="unknown_key", client=address)
        return render(request, "sign_in.html", status=401, next=_next(given.get("next", "")),
                      error="That key opens nothing here.")  # fmt: skip
    if not caller.scopes & CONSOLE_SCOPES:
        log.warning("console_sign_in_refused", why="no_console_scope", label=caller.label, client=address)
        return render(request, "sign_in.html", status=403, next=_next(given.get("next", "")),
                      error=f"The key {caller.label!r} has no console scope (console or console:write).")  # fmt: skip
    cookie, session = parts.sessions.issue(caller.label)
    log.info("console_signed_in", label=caller.label, write=session.can_write)
    response = RedirectResponse(_next(given.get("next", "")), status_code=303)
    response.set_cookie(COOKIE, cookie, max_age=parts.sessions.max_age_s, path=ROOT.rstrip("/"), httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")  # fmt: skip
    return response


async def sign_out(request: Request, parts: Parts, session: Session) -> Response:
    response = RedirectResponse(f"{ROOT}sign-in", status_code=303)
    response.delete_cookie(COOKIE, path=ROOT.rstrip("/"), httponly=True, samesite="strict")
    return response


def _next(wanted: str) -> str:
    """Where to go after signing in: a console page only (never another site)."""
    return wanted if wanted.startswith(ROOT) and "//" not in wanted and "\\" not in wanted else ROOT
