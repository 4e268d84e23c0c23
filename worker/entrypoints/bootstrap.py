"""The composition root: the only place the worker builds Redis, httpx and Postgres clients.

The forked helpers (worker/sweeps/, worker/outputs/table_sync.py) and the heartbeat middleware assemble their
loops from what this module builds (`build_kinde_client`, `build_fleet_deps`, `clients.build_redis`);
the plain Redis and Postgres clients are worker/entrypoints/clients.py (which the table drain imports, as it
cannot import this module); only the broker's own connection is built beside it (worker/runtime/broker.py), and
the launcher's one ping.

Actors reach their dependencies through `deps()`, built lazily on first use, i.e. inside each
worker process after Dramatiq has forked it (no I/O at import time). Tests install their own
with `use_deps(...)`.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any

import dramatiq
import httpx
import redis

from common.customers.history import History, RedisHistory
from common.customers.links import RedisLinkStore
from common.entitlements.customer import RedisEntitlementStore
from common.entitlements.grants import RedisGrantStore
from common.entitlements.manual_grants import RedisHandGrantStore
from common.entitlements.shadow_writes import RedisShadowLog
from common.entitlements.snapshots import RedisSnapshotStore, SnapshotStore
from common.guard.members import RedisMemberCache
from common.guard.usage import RedisUsageStore
from common.infra import minute_counts
from common.infra.deadletters import DeadLetterStore, RedisDeadLetterStore
from common.messages import converge_message, event_message, notify_message, rebuild_message
from common.plans.mapping import load_plans
from common.plans.payments import RedisPaymentStore
from common.settings import Settings, notify_key
from worker.convergence.converge import Converger
from worker.convergence.deleted import RedisDeletions
from worker.convergence.targets import RedisTargetLocks
from worker.customers.customer_state import CustomerStates
from worker.customers.park import Enqueue, Parking
from worker.customers.rebuild import Rebuilds, Start, Stepper, learner
from worker.customers.rebuild_store import RedisRebuildStore
from worker.customers.resolve import Resolver
from worker.entrypoints.clients import build_redis
from worker.events.coalesce import RedisCoalescer
from worker.events.handlers import Deps
from worker.kinde.api import HttpxKindeApi
from worker.kinde.ratelimit import RedisKindeGate
from worker.kinde.roles import RedisRoleCatalog, default_org
from worker.kinde.token import shared_tokens
from worker.outputs.notify import Send, notifying
from worker.outputs.notify_delivery import NotifyFailedError, WebhookSender
from worker.outputs.table_feed import TableFeed
from worker.outputs.table_sync import build_sync
from worker.runtime import metrics

_lock = threading.Lock()
_deps: Deps | None = None
_dead_letters: DeadLetterStore | None = None
_timeline: History | None = None
_injected = False  # set by use_deps: tests name every store, nothing is built from the environment
_sender: WebhookSender | None = None


def enqueue_to_broker(
    claims: dict[str, Any],
    meta: dict[str, Any],
    delay_ms: int,
    broker: dramatiq.Broker | None = None,
    *,
    bulk: bool = False,
) -> None:
    """Send claims back to `handle_event` (replays and re-checks of parked events) on `broker` or the
    active one; `bulk` ones (dead-letter replays) to `handle_bulk_event`, behind fresh events."""
    message = event_message(claims, None, time.time(), bulk=bulk)
    message = message.copy(args=(claims, {**message.args[1], **meta}))
    (broker or dramatiq.get_broker()).enqueue(message, delay=delay_ms or None)


def converge_on_broker(customer_id: str, reason: str, broker: dramatiq.Broker | None = None) -> None:
    """Ask the fleet for one pass of the customer (a moved link takes its roles from the old target)."""
    (broker or dramatiq.get_broker()).enqueue(converge_message(customer_id, reason))


def enqueue_rebuild(holder: str, broker: dramatiq.Broker | None = None) -> None:
    """Send the next chunk of the index rebuild to `rebuild_index` on `broker` or the active one."""
    (broker or dramatiq.get_broker()).enqueue(rebuild_message(holder))


def notify_on_broker(notification: dict[str, Any], broker: dramatiq.Broker | None = None) -> None:
    """Queue one `entitlements.updated` webhook for the `notify_app` actor (worker/outputs/notify_delivery.py)."""
    (broker or dramatiq.get_broker()).enqueue(notify_message(notification))


def build_deps(
    settings: Settings,
    *,
    enqueue: Enqueue = enqueue_to_broker,
    start: Start = enqueue_rebuild,
    notify: Send = notify_on_broker,
) -> Deps:
    client = build_redis(settings)
    kinde = build_kinde_client(settings, client)
    links = RedisLinkStore(client)
    links.index_payers()
    converge = converge_on_broker if enqueue is enqueue_to_broker else None
    grants = RedisGrantStore(client)
    history = RedisHistory(client, ttl_s=settings.history_ttl_s)
    b2c_org = _b2c_org(settings, client, kinde)
    parking = Parking(links, RedisDeadLetterStore(client), enqueue, converge, grants, history, b2c_org=b2c_org)
    members = RedisMemberCache(client)
    converger = Converger(
        kinde,
        RedisRoleCatalog(client, kinde),
        load_plans(settings.plans_path),
        b2c_org,
        grants,
        links,
        RedisTargetLocks(client),
        payments=RedisPaymentStore(client),
        entitlements=RedisEntitlementStore(client),
        snapshots=notifying(snapshot_store(settings, client), notify if settings.notify_url else None),
        member_cache=members,
        deletions=RedisDeletions(client),
        hand_grants=RedisHandGrantStore(client),
        shadow=RedisShadowLog(client) if settings.mode == "shadow" else None,
    )
    stepper = Stepper(kinde, links, settings.kinde_org_code, learner(links, parking))
    rebuilds = Rebuilds(RedisRebuildStore(client), stepper, start)
    resolver = Resolver(kinde, links, parking, settings.kinde_org_code, rebuilds)
    coalescer = RedisCoalescer(client, event_ttl_s=settings.dedupe_ttl_s, lease_ms=settings.customer_lease_s * 1000)
    states = CustomerStates(client)
    return Deps(links, coalescer, resolver, converger, parking, states, usage=RedisUsageStore(client), history=history,
                members=members, count=functools.partial(minute_counts.count, client))  # fmt: skip


def snapshot_store(settings: Settings, client: redis.Redis) -> SnapshotStore:
    """The snapshots in Redis, which also feed the Postgres table when ROLESYNC_POSTGRES_URL is set."""
    store = RedisSnapshotStore(client)
    if not settings.postgres_url:
        return store
    return TableFeed(store, build_sync(settings, client, pool_size=8), RedisUsageStore(client).of)


def build_fleet_deps(settings: Settings, broker: dramatiq.Broker) -> Deps:
    """A forked helper's worker dependencies, sending what they enqueue on its own `broker`."""
    return build_deps(
        settings,
        enqueue=functools.partial(enqueue_to_broker, broker=broker),
        start=functools.partial(enqueue_rebuild, broker=broker),
        notify=functools.partial(notify_on_broker, broker=broker),
    )


def build_kinde_client(settings: Settings, client: redis.Redis) -> HttpxKindeApi:
    """The Management API client over its own httpx client."""
    return build_kinde(settings, client, httpx.Client(timeout=settings.kinde_http_timeout_s))


def build_kinde(settings: Settings, client: redis.Redis, http: httpx.Client) -> HttpxKindeApi:
    """The Management API client on the fleet's shared token and rate gate."""
    tokens = shared_tokens(client, http, settings, on_fetch=metrics.TOKEN_FETCHES.inc)
    return HttpxKindeApi(http, settings.kinde_domain, tokens, RedisKindeGate(client, settings.kinde_api_rps))


def _b2c_org(settings: Settings, client: redis.Redis, kinde: HttpxKindeApi) -> Callable[[], str]:
    if settings.kinde_org_code:
        return lambda: settings.kinde_org_code
    return lambda: default_org(client, kinde)


def deps() -> Deps:
    global _deps
    with _lock:
        if _deps is None:
            _deps = build_deps(Settings.from_env())
        return _deps


def dead_letters() -> DeadLetterStore:
    global _dead_letters
    with _lock:
        if _dead_letters is None:
            _dead_letters = RedisDeadLetterStore(build_redis(Settings.from_env()))
        return _dead_letters


def timeline() -> History | None:
    """Customers' timelines, for what is written outside a handler (dead letters by the middleware)."""
    global _timeline
    with _lock:
        if _timeline is None and not _injected:
            settings = Settings.from_env()
            _timeline = RedisHistory(build_redis(settings), ttl_s=settings.history_ttl_s)
        return _timeline


def webhook_sender() -> WebhookSender:
    """The app's webhook client (ROLESYNC_NOTIFY_URL), built on first use in each worker process."""
    global _sender
    with _lock:
        if _sender is None:
            settings = Settings.from_env()
            if not settings.notify_url:  # queued while it was set: kept for a replay once it is again
                raise NotifyFailedError("ROLESYNC_NOTIFY_URL is not set on this worker")
            http = httpx.Client(timeout=settings.notify_timeout_s)
            _sender = WebhookSender(http, settings.notify_url, notify_key(settings.notify_secret))
        return _sender


def use_deps(built: Deps | None, store: DeadLetterStore | None = None, history: History | None = None) -> None:
    global _deps, _dead_letters, _timeline, _injected
    with _lock:
        _deps, _dead_letters, _timeline = built, store, history
        _injected = any(x is not None for x in (built, store, history))
