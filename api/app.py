"""The read API's Starlette app: entitlements per user, customers and their timelines, from Redis only.

Its own process (`rolesync api`), so the ingest stays a thin webhook intake. Every `/v1` route needs
a bearer key from ROLESYNC_API_KEYS (401 without a valid one, 403 for a key without the route's
scope); answers carry an ETag and a matching If-None-Match gets 304. An unknown user or customer is
404 with a body that says so; a known user with nothing in force is 200 with empty lists.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis
import structlog
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from api import views
from api.auth import Caller, Keys
from api.auth_limit import AuthFailureLimit
from api.concurrency import ConcurrencyLimit
from api.grants import GrantDesk, delete_grant, get_grant, list_grants, put_grant
from api.guard_store import GuardStore, RedisGuardStore
from api.metrics import Metrics
from api.openapi import SPEC
from api.plan_selection import Guard, plan_selection
from api.reader import Reader, RedisReader
from api.usage_reports import put_usage
from common.customers.history import RedisHistory
from common.customers.links import RedisLinkStore
from common.entitlements.grant_recipients import KnownRecipients
from common.entitlements.hand_grant_changes import HandGrantChanges
from common.entitlements.manual_grants import RedisHandGrantStore
from common.errors import ConfigError, RetryableError
from common.infra.audit_trail import Audit
from common.infra.connections import async_redis_client, redis_client
from common.infra.failure_limit import FailureLimiter
from common.infra.layout import LAYOUT
from common.infra.version import release
from common.plans.mapping import PlanMap, load_plans
from common.settings import GRANTS_WRITE_SCOPE, USAGE_WRITE_SCOPE, Settings

log = structlog.get_logger(__name__)

REDIS_TIMEOUT_S = 1.0
Handler = Callable[[Request], Awaitable[Response]]


# What one app serves: both (one port), or the reads and the guard each on a listener of its own (api/guard_port.py).
READS, GUARD = "reads", "guard"


def create_app(settings: Settings, *, reader: Reader | None = None, metrics: Metrics | None = None,
               plans: PlanMap | None = None, guard_store: GuardStore | None = None,
               metrics_route: bool = True, serves: tuple[str, ...] = (READS, GUARD),
               more: Sequence[BaseRoute] = (), grants: GrantDesk | None = None) -> Starlette:  # fmt: skip
    """`metrics_route=False` when `/metrics` is served on a port of its own (common/infra/metrics_port.py); `more`:
    routes served beside the API's (the console at /console, which api/ does not import)."""
    measured = metrics or Metrics()
    routes: list[BaseRoute] = [
        *(_read_routes(Keys(settings.api_keys), measured) if READS in serves else []),
        *([Route("/v1/plan-selection", _timed(plan_selection, "plan_selection", measured), methods=["POST"])]
          if GUARD in serves else []),
        Route("/openapi.json", openapi),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
    ]  # fmt: skip
    if metrics_route:
        routes.append(Route("/metrics", metrics_endpoint))
    routes.extend(more)
    parts = _Parts(reader, guard_store, plans, grants)
    lifespan = functools.partial(_lifespan, settings=settings, parts=parts, metrics=measured)
    limiter = FailureLimiter(settings.api_auth_failures, settings.api_auth_window_s)
    middleware = [
        Middleware(AuthFailureLimit, limiter=limiter, metrics=measured),
        Middleware(ConcurrencyLimit, limit=settings.api_max_in_flight, metrics=measured),
    ]
    return Starlette(routes=routes, lifespan=lifespan, middleware=middleware,
                     exception_handlers={HTTPException: _http_error})  # fmt: skip


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own answers (no such route, a method the route does not take) as JSON errors too."""
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse(views.error(code, exc.detail), status_code=exc.status_code, headers=exc.headers)


def _read_routes(keys: Keys, metrics: Metrics) -> list[Route]:
    guard = functools.partial(_guarded, keys=keys, metrics=metrics)
    return [
        Route("/v1/users/{user_id}/entitlements", guard("users", user_entitlements, "user_entitlements")),
        Route("/v1/users/{user_id}/entitlements/{feature_code}", guard("users", user_feature, "user_feature")),
        Route("/v1/customers/{customer_id}", guard("customers", customer, "customer")),
        Route("/v1/customers/{customer_id}/history", guard("customers", customer_history, "customer_history")),
        Route(
            "/v1/customers/{customer_id}/usage/{metric}",
            guard(USAGE_WRITE_SCOPE, put_usage, "usage_report"),
            methods=["PUT"],
        ),
        Route("/v1/grants", guard("users", list_grants, "grants_list")),
        _by_method("/v1/grants/{grant_id}", {"GET": guard("users", get_grant, "grant"),
                                             "PUT": guard(GRANTS_WRITE_SCOPE, put_grant, "grant_put"),
                                             "DELETE": guard(GRANTS_WRITE_SCOPE, delete_grant, "grant_delete")}),
    ]  # fmt: skip


def _by_method(path: str, handlers: dict[str, Handler]) -> Route:
    """One route for several methods, each with its own scope: a 405 there lists every one of them in Allow."""

    async def endpoint(request: Request) -> Response:
        return await handlers["GET" if request.method == "HEAD" else request.method](request)

    return Route(path, endpoint, methods=list(handlers))


@dataclass(frozen=True)
class _Parts:
    reader: Reader | None
    guard_store: GuardStore | None
    plans: PlanMap | None
    grants: GrantDesk | None


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette, *, settings: Settings, parts: _Parts, metrics: Metrics) -> AsyncIterator[None]:
    async with contextlib.AsyncExitStack() as stack:
        reader, store = parts.reader, parts.guard_store
        if reader is None or store is None:
            client = async_redis_client(settings, timeout_s=REDIS_TIMEOUT_S)
            stack.push_async_callback(client.aclose)
            reader, store = reader or RedisReader(client), store or RedisGuardStore(client)
        plans = parts.plans or _plans(settings)
        app.state.reader, app.state.metrics, app.state.guard_store = reader, metrics, store
        app.state.workflow_secret, app.state.usage_ttl_s = settings.workflow_secret, settings.history_ttl_s
        grants = parts.grants
        if grants is None and (parts.reader is None or parts.guard_store is None):  # built from settings, as above
            sync = redis_client(settings, timeout_s=REDIS_TIMEOUT_S)  # hand grants: rare writes, off the loop
            stack.callback(sync.close)
            grants = _grant_desk(sync, settings, plans)
        app.state.grants = grants
        app.state.guard = (
            Guard(store, plans, metrics, settings.history_ttl_s, settings.kinde_org_code) if plans else None
        )
        yield


def _grant_desk(client: redis.Redis, settings: Settings, plans: PlanMap | None) -> GrantDesk:
    """Hand grants over a synchronous client of their own (common/entitlements/manual_grants.py)."""
    store, audit = RedisHandGrantStore(client), Audit(client, RedisHistory(client, ttl_s=settings.history_ttl_s))
    known = KnownRecipients(client)  # the API never calls Kinde: what the service knows of the user
    changes = HandGrantChanges(store, audit, plans.managed_roles, RedisLinkStore(client).customers_of_user,
                               known) if plans else None  # fmt: skip
    return GrantDesk(store, changes)


def _plans(settings: Settings) -> PlanMap | None:
    """plans.toml for the guard; the read routes serve without it (the guard then answers 503)."""
    try:
        return load_plans(settings.plans_path)
    except ConfigError as exc:
        log.error("plans_unreadable", error=str(exc))
        return None


def _timed(handler: Handler, route: str, metrics: Metrics) -> Handler:
    async def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        response = await handler(request)
        metrics.observe(route, response.status_code, time.perf_counter() - started)
        return response

    return endpoint


def _guarded(scope: str, handler: Callable[[Request, Reader], Awaitable[Response]], route: str, *, keys: Keys,
             metrics: Metrics) -> Handler:  # fmt: skip
    async def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        response = await _answer(request, scope, handler, keys.caller(request.headers.get("authorization", "")))
        metrics.observe(route, response.status_code, time.perf_counter() - started)
        return response

    return endpoint


async def _answer(request: Request, scope: str, handler: Callable[[Request, Reader], Awaitable[Response]],
                  caller: Caller | None) -> Response:  # fmt: skip
    if caller is None:
        body = views.error("unauthorized", "send a key from ROLESYNC_API_KEYS as 'Authorization: Bearer KEY'")
        return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})
    if scope not in caller.scopes:
        return JSONResponse(views.error("forbidden", f"this key lacks the '{scope}' scope"), status_code=403)
    request.state.caller_label = caller.label
    try:
        return await handler(request, request.app.state.reader)
    except RetryableError:
        return JSONResponse(views.error("unavailable", "Redis did not answer; try again"), status_code=503,
                            headers={"Retry-After": "1"})  # fmt: skip


def tagged(request: Request, body: dict[str, Any]) -> Response:
    """200 with a strong ETag over the body, or 304 when If-None-Match already names it."""
    content = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    etag = '"' + hashlib.sha256(content).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if _matches(request.headers.get("if-none-match", ""), etag):
        return Response(status_code=304, headers=headers)
    return Response(content, media_type="application/json", headers=headers)


def _matches(header: str, etag: str) -> bool:
    offered = {t.strip().removeprefix("W/") for t in header.split(",") if t.strip()}
    return "*" in offered or etag in offered


def _not_found(code: str, message: str) -> Response:
    return JSONResponse(views.error(code, message), status_code=404)


def _org(request: Request) -> str | None:
    return request.query_params.get("org_code") or None


async def user_entitlements(request: Request, reader: Reader) -> Response:
    user_id = request.path_params["user_id"]
    view = await reader.user(user_id)
    if view is None:
        return _not_found("user_not_found", f"no user {user_id} is known: it has no billing customer and no snapshot")
    return tagged(request, views.user_entitlements(user_id, _org(request), view))


async def user_feature(request: Request, reader: Reader) -> Response:
    user_id, feature = request.path_params["user_id"], request.path_params["feature_code"]
    view = await reader.user(user_id)
    if view is None:
        return _not_found("user_not_found", f"no user {user_id} is known: it has no billing customer and no snapshot")
    return tagged(request, views.user_feature(user_id, feature, _org(request), view))


async def customer(request: Request, reader: Reader) -> Response:
    customer_id = request.path_params["customer_id"]
    found = await reader.customer(customer_id)
    if found is None:
        return _not_found("customer_not_found", f"no customer {customer_id} is known: no link and no pass yet")
    return tagged(request, views.customer(customer_id, found))


async def customer_history(request: Request, reader: Reader) -> Response:
    customer_id = request.path_params["customer_id"]
    entries = await reader.history(customer_id)
    if not entries and await reader.customer(customer_id) is None:
        return _not_found("customer_not_found", f"no customer {customer_id} is known and nothing happened to it")
    return tagged(request, {"customer_id": customer_id, "entries": entries})


async def openapi(request: Request) -> Response:
    return JSONResponse(SPEC)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok", "version": release()})


async def readyz(request: Request) -> Response:
    try:
        await request.app.state.reader.ping()
    except RetryableError:
        return JSONResponse({"status": "unready", "redis": "unavailable"}, status_code=503)
    found = {"redis_data": await _data_state(request.app.state.reader), "layout": LAYOUT}
    return JSONResponse({"status": "ready", "redis": "ok", **found})


async def _data_state(reader: Reader) -> str:
    """A lost Redis being healed is said, not a 503: the API still answers what it has (docs/reliability.md)."""
    try:
        return await reader.data_state()
    except RetryableError:
        return "unknown"


async def metrics_endpoint(request: Request) -> Response:
    return Response(request.app.state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
