"""The security frame every console page goes through: a session or the sign-in page, and on each POST
the CSRF token, a same-origin check and, for actions, the `console:write` scope.

A service error becomes a page that says what went wrong (a user mistake: 400, unknown: 404, Redis
down: 503), never a traceback.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from common.errors import ConfigError, PermanentError, RetryableError
from console.forms import BadFormError, fields
from console.parts import Parts
from console.session import COOKIE, Session

Page = Callable[[Request, Parts, Session], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]
ROOT = "/console/"


def render(request: Request, name: str, session: Session | None = None, status: int = 200, **context: Any) -> Response:
    parts: Parts = request.app.state.parts
    html = parts.templates.get_template(name).render(session=session, now=time.time(), path=request.url.path,
                                                     **context)  # fmt: skip
    return HTMLResponse(html, status_code=status)


def problem(request: Request, session: Session | None, status: int, message: str) -> Response:
    return render(request, "problem.html", session, status=status, message=message)


def page(handler: Page, *, write: bool = False) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        parts: Parts = request.app.state.parts
        session = parts.sessions.read(request.cookies.get(COOKIE, ""))
        if session is None:
            if request.method == "GET":
                return RedirectResponse(f"{ROOT}sign-in?next={quote(request.url.path)}", status_code=303)
            return problem(request, None, 403, "Sign in first: this console needs a signed-in key.")
        if request.method == "POST":
            refused = await _refused_post(request, session, write)
            if refused is not None:
                return refused
        return await _answered(handler, request, parts, session)

    return endpoint


async def _refused_post(request: Request, session: Session, write: bool) -> Response | None:
    try:
        request.state.form = await fields(request)
    except BadFormError as exc:
        return problem(request, session, 400, str(exc))
    token = request.state.form.get("csrf", "")
    if not same_origin(request) or not hmac.compare_digest(token.encode(), session.csrf.encode()):
        return problem(request, session, 403, "Refused: this form did not come from the console "
                       "(its CSRF token is missing or wrong). Nothing was changed.")  # fmt: skip
    if write and not session.can_write:
        return problem(request, session, 403, f"The key {session.label!r} reads only: actions need a key "
                       "with the console:write scope. Nothing was changed.")  # fmt: skip
    return None


async def _answered(handler: Page, request: Request, parts: Parts, session: Session) -> Response:
    try:
        return await handler(request, parts, session)
    except RetryableError as exc:
        return problem(request, session, 503, f"Redis or the broker did not answer ({exc}); try again.")
    except PermanentError as exc:
        status = 404 if exc.reason.startswith("unknown") else 400
        return problem(request, session, status, str(exc))
    except ConfigError as exc:
        return problem(request, session, 503, f"This API process cannot do that: {exc}")


def same_origin(request: Request) -> bool:
    """A browser names the page a POST came from; one from another site is refused even with a cookie."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin:
        return True  # not a browser, or one that sends neither: the CSRF token alone decides
    return urlsplit(origin).netloc == request.headers.get("host", "")


def form(request: Request) -> dict[str, str]:
    found: dict[str, str] = request.state.form
    return found
