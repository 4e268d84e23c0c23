"""The console's routes, mounted at `/console` in `rolesync api`'s app (cli/main.py) when a key has a console
scope; without one there is no console at all (404).

Reading pages need a session (console/frame.py); every POST needs the session's CSRF token, and an
action the `console:write` scope.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from common.settings import Settings
from console import customers, dead_letters, guard, overview, signin
from console.frame import page
from console.headers import SecurityHeaders
from console.parts import Parts, build_parts
from console.session import console_keys

STATIC = Path(__file__).with_name("static")


def console_routes(settings: Settings, parts: Parts | None = None) -> list[BaseRoute]:
    """[] unless a key in ROLESYNC_API_KEYS has `console` or `console:write`."""
    if not console_keys(settings.api_keys):
        return []
    return [Mount("/console", app=console_app(parts or build_parts(settings)))]


def console_app(parts: Parts) -> Starlette:
    app = Starlette(routes=_routes(), middleware=[Middleware(SecurityHeaders)])
    app.state.parts = parts
    return app


def _routes() -> list[BaseRoute]:
    dl, cu = dead_letters, customers
    return [
        Route("/", page(overview.overview)),
        Route("/sign-in", signin.sign_in_form, methods=["GET"]),
        Route("/sign-in", signin.sign_in, methods=["POST"]),
        Route("/sign-out", page(signin.sign_out), methods=["POST"]),
        Route("/dead-letters", page(dl.listing)),
        Route("/dead-letters/confirm/{action:str}", page(dl.confirm_bulk)),
        Route("/dead-letters/replay", page(dl.replay_matching, write=True), methods=["POST"]),
        Route("/dead-letters/purge", page(dl.purge_matching, write=True), methods=["POST"]),
        Route("/dead-letters/{record_id:str}", page(dl.record)),
        Route("/dead-letters/{record_id:str}/replay", page(dl.replay_one, write=True), methods=["POST"]),
        Route("/customers", page(cu.lookup)),
        Route("/customers/{customer_id:str}", page(cu.customer)),
        Route("/customers/{customer_id:str}/confirm/{action:str}", page(cu.confirm)),
        Route("/customers/{customer_id:str}/{action:str}", page(cu.act, write=True), methods=["POST"]),
        Route("/users/{user_id:str}", page(cu.user)),
        Route("/guard", page(guard.decisions)),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
