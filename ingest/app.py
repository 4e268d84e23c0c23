"""The ingest's Starlette app: `POST /webhooks/kinde`, `/healthz`, `/readyz`, `/metrics`.

Endpoints are thin: the work is in ingest/webhook.py. Dependencies can be injected (tests, the
benchmark); whatever is not injected is built in the lifespan from Settings and closed after.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta

import httpx
import redis.asyncio
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from common.errors import RetryableError
from common.infra import data_loss, tracing
from common.infra.connections import async_redis_client
from common.infra.failure_limit import FailureLimiter
from common.infra.layout import LAYOUT
from common.infra.version import release
from common.settings import Settings
from ingest.claims import Policy
from ingest.data_watch import keep_watching
from ingest.enqueue import EventQueue, RedisEventQueue
from ingest.jwks import JwksCache
from ingest.jwks_fetch import fetch_jwks
from ingest.metrics import Metrics
from ingest.observe import clean_header, observe
from ingest.signature_limit import count, throttled
from ingest.webhook import Outcome, WebhookIntake

MAX_BODY_BYTES = 64 * 1024
REDIS_TIMEOUT_S = 1.0  # answer 503 fast so Kinde retries, rather than hold the request
JWKS_TIMEOUT_S = 3.0


@dataclass
class Deps:
    metrics: Metrics
    queue: EventQueue | None
    keys: JwksCache | None
    clock: Callable[[], float]
    signature_failures: FailureLimiter


def create_app(
    settings: Settings,
    *,
    queue: EventQueue | None = None,
    keys: JwksCache | None = None,
    metrics: Metrics | None = None,
    clock: Callable[[], float] = time.time,
    metrics_route: bool = True,
) -> Starlette:
    """`metrics_route=False` when `/metrics` is served on a port of its own (common/infra/metrics_port.py)."""
    failures = FailureLimiter(settings.ingest_signature_failures, settings.ingest_signature_window_s)
    deps = Deps(metrics or Metrics(), queue, keys, clock, failures)
    routes = [
        Route("/webhooks/kinde", receive_webhook, methods=["POST"], max_body_size=MAX_BODY_BYTES),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
    ]
    if metrics_route:
        routes.append(Route("/metrics", metrics_endpoint))
    return Starlette(routes=routes, lifespan=functools.partial(lifespan, settings=settings, deps=deps))


@contextlib.asynccontextmanager
async def lifespan(app: Starlette, *, settings: Settings, deps: Deps) -> AsyncIterator[None]:
    async with contextlib.AsyncExitStack() as stack:
        queue = deps.queue or await _redis_queue(settings, stack)
        keys = deps.keys or await _jwks_cache(settings, stack, deps.metrics)
        if not keys.loaded:
            await keys.try_refresh()
        refresher = asyncio.create_task(keys.keep_fresh())
        stack.callback(refresher.cancel)
        app.state.data = await _data_watch(settings, stack) if deps.queue is None else None
        app.state.metrics, app.state.signature_failures = deps.metrics, deps.signature_failures
        app.state.intake = WebhookIntake(keys=keys, queue=queue, policy=policy_of(settings), clock=deps.clock)
        yield


async def _redis_queue(settings: Settings, stack: contextlib.AsyncExitStack) -> EventQueue:
    client = async_redis_client(settings, timeout_s=REDIS_TIMEOUT_S)
    stack.push_async_callback(client.aclose)
    queue = RedisEventQueue(
        client,
        dedupe_ttl_s=settings.dedupe_ttl_s,
        min_replicas=settings.redis_min_replicas,
        burst_events=settings.bulk_burst_events,
    )
    stack.push_async_callback(queue.aclose)
    counting = asyncio.create_task(queue.keep_counts())
    stack.push_async_callback(queue.flush_counts)  # after the task is cancelled: the last second's counts
    stack.callback(counting.cancel)
    return queue


async def _data_watch(settings: Settings, stack: contextlib.AsyncExitStack) -> redis.asyncio.Redis:
    """The epoch watch's own client (ingest/data_watch.py); `/readyz` reads the data-loss record on it."""
    client = async_redis_client(settings, timeout_s=REDIS_TIMEOUT_S)
    stack.push_async_callback(client.aclose)
    watcher = asyncio.create_task(keep_watching(client))
    stack.callback(watcher.cancel)
    return client


async def _jwks_cache(settings: Settings, stack: contextlib.AsyncExitStack, metrics: Metrics) -> JwksCache:
    http = await stack.enter_async_context(httpx.AsyncClient(timeout=JWKS_TIMEOUT_S, follow_redirects=False))
    fetch = functools.partial(fetch_jwks, http, settings.jwks_url)
    return JwksCache(fetch, cooldown_s=settings.jwks_refetch_cooldown_s, on_refresh=metrics.count_jwks_refresh)


def policy_of(settings: Settings) -> Policy:
    return Policy(
        max_age=timedelta(seconds=settings.event_max_age_s), max_future=timedelta(seconds=settings.event_max_future_s)
    )


async def receive_webhook(request: Request) -> Response:
    started = time.perf_counter()
    webhook_id = clean_header(request.headers.get("webhook-id"))
    address = request.client.host if request.client else "unknown"
    failures: FailureLimiter = request.app.state.signature_failures
    refused = throttled(failures, address)
    if refused is not None:  # before the body is read: a blocked flood costs no verification
        _observe(request, refused, webhook_id, started)
        return JSONResponse(refused.body(), status_code=429, headers=refused.headers())
    try:
        body = await request.body()
    except HTTPException as exc:  # the body limit, raised before the body is read in full
        _observe(request, Outcome(exc.status_code, "too_large", "too_large"), webhook_id, started)
        raise
    except ClientDisconnect:
        _observe(request, Outcome(400, "disconnected", "client_disconnected"), webhook_id, started)
        raise
    with tracing.span("webhook", {"http.method": "POST"}):
        outcome = await request.app.state.intake.handle(body, webhook_id)
        tracing.annotate(outcome=outcome.outcome, **{"http.status_code": outcome.status_code})
    count(failures, address, outcome)
    _observe(request, outcome, webhook_id, started)
    return JSONResponse(outcome.body(), status_code=outcome.status_code)


def _observe(request: Request, outcome: Outcome, webhook_id: str | None, started: float) -> None:
    observe(outcome, metrics=request.app.state.metrics, webhook_id=webhook_id, duration_s=time.perf_counter() - started)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok", "version": release()})


async def readyz(request: Request) -> Response:
    intake: WebhookIntake = request.app.state.intake
    checks = {"redis": "ok", "signing_keys": "loaded" if intake.keys.loaded else "missing"}
    try:
        await intake.queue.ping()
    except RetryableError:
        checks["redis"] = "unavailable"
    ready = checks == {"redis": "ok", "signing_keys": "loaded"}
    found = {"redis_data": await _data_state(request.app.state.data), "layout": LAYOUT} if ready else {}
    body = {"status": "ready" if ready else "unready", **checks, **found}
    return JSONResponse(body, status_code=200 if ready else 503)


async def _data_state(client: redis.asyncio.Redis | None) -> str:
    """Whether Redis lost its data and is being healed: said, never a 503 (webhooks are still accepted)."""
    if client is None:
        return "ok"
    try:
        return data_loss.readiness(await data_loss.last_async(client))
    except RetryableError:
        return "unknown"


async def metrics_endpoint(request: Request) -> Response:
    return Response(request.app.state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
