"""Events Kinde refused for a missing scope wait as `kinde_forbidden` dead letters, and come back
by themselves once one cheap call of the refused endpoint goes through.

Every replica runs this loop in a forked helper process (`--fork-function`); each tick tries to take
`keys.SCOPE_PROBE_SLOT` (SET NX PX for one `ROLESYNC_SCOPE_PROBE_INTERVAL_S`), so one worker probes
per interval. It makes one call per endpoint a waiting event was refused on, with ids that match
nothing: a 403 means the scope is still missing, any other answer (404 and the like) that the app
has it. The calls go through the worker's own client, so a shared token issued before the scope was
granted is refetched there (worker/kinde/api.py). Every waiting event of a granted endpoint is then
replayed; one refused again elsewhere waits again under that endpoint. A record written just after
a probe is not stranded: the next interval probes again while any record waits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial

import redis
import structlog

from common import keys
from common.customers.history import RedisHistory
from common.errors import ForbiddenError, PermanentError
from common.infra.deadletters import FORBIDDEN, DeadLetter, DeadLetterStore, RedisDeadLetterStore
from common.infra.logs import configure_logging
from common.messages import converge_message
from common.settings import Settings
from worker.entrypoints.bootstrap import build_kinde_client, enqueue_to_broker
from worker.entrypoints.clients import build_redis
from worker.kinde.api import HttpxKindeApi
from worker.kinde.scopes import SCOPE_OF
from worker.runtime.broker import build_broker
from worker.runtime.heartbeat import worker_id
from worker.runtime.replay import Replayer
from worker.sweeps import interval_slot

log = structlog.get_logger(__name__)
NO_USER = "kp_rolesync_scope_probe"
NO_ORG = "org_rolesync_scope_probe"
NO_CUSTOMER = "customer_rolesync_scope_probe"
NO_ROLE = "role_rolesync_scope_probe"
EVERYTHING = 1_000_000_000


@dataclass(frozen=True)
class Probe:
    endpoint: str
    call: Callable[[HttpxKindeApi], object]

    @property
    def scope(self) -> str:
        return SCOPE_OF[self.endpoint]


def _first(items: Iterable[object]) -> object:
    return next(iter(items), None)


READ_PROBES = (
    Probe("GET /user", lambda k: k.get_user(NO_USER)),
    Probe("GET /users", lambda k: _first(k.list_users(expand_billing=False))),
    Probe("GET /organizations", lambda k: _first(k.list_organizations(expand_billing=False))),
    Probe("GET /organization", lambda k: k.get_organization(NO_ORG)),
    Probe("GET /organizations/{org}/users", lambda k: _first(k.org_members(NO_ORG))),
    Probe("GET /roles", lambda k: k.roles()),
    Probe("GET /organizations/{org}/users/{user}/roles", lambda k: k.user_roles(NO_ORG, NO_USER)),
    Probe("GET /billing/agreements", lambda k: k.agreements(NO_CUSTOMER)),
)
# Needed only while plans.toml reads entitlements ([entitlements] enabled, the default).
ENTITLEMENTS_PROBE = Probe("GET /billing/entitlements", lambda k: k.entitlements(NO_CUSTOMER))
# Writes aimed at an org, user and role that do not exist change nothing; doctor, run by a human,
# reads write scopes from its token instead, but here the refused call itself is the question.
WRITE_PROBES = (
    Probe("POST /organizations/{org}/users/{user}/roles", lambda k: k.add_role(NO_ORG, NO_USER, NO_ROLE)),
    Probe("DELETE /organizations/{org}/users/{user}/roles/{role}", lambda k: k.remove_role(NO_ORG, NO_USER, NO_ROLE)),
)
PROBES = {p.endpoint: p for p in (*READ_PROBES, ENTITLEMENTS_PROBE, *WRITE_PROBES)}


def refused_scope(api: HttpxKindeApi, probe: Probe) -> str | None:
    """The scope Kinde's 403 named (else the endpoint's), or None when the call got past the scope
    check; a retryable failure propagates (nothing learned: try again next interval)."""
    try:
        probe.call(api)
    except ForbiddenError as exc:
        return exc.scope or probe.scope
    except PermanentError:  # 404 and the like: the call got past the scope check
        return None
    return None


def granted(api: HttpxKindeApi, probe: Probe) -> bool:
    return refused_scope(api, probe) is None


def open_endpoints(api: HttpxKindeApi, waiting: list[DeadLetter]) -> set[str]:
    endpoints = {r.endpoint for r in waiting if r.endpoint}
    found = {e for e in sorted(endpoints) if e in PROBES and granted(api, PROBES[e])}
    for endpoint in endpoints - found:
        log.info("scope_probe_refused", endpoint=endpoint, scope=SCOPE_OF.get(endpoint))
    return found


def replay_granted(api: HttpxKindeApi, store: DeadLetterStore, replayer: Replayer) -> int:
    """Probe each endpoint waiting events were refused on; replay those whose endpoint now answers."""
    waiting = store.list(reason=FORBIDDEN, limit=EVERYTHING)
    if not waiting:
        return 0
    opened = open_endpoints(api, waiting)
    replayed = [replayer.replay(r) for r in waiting if r.endpoint in opened]
    if replayed:
        log.info("forbidden_events_replayed", count=len(replayed), endpoints=sorted(opened))
    return len(replayed)


def take_slot(client: redis.Redis, interval_s: float, holder: str) -> bool:
    return interval_slot.take_slot(client, keys.SCOPE_PROBE_SLOT, interval_s, holder, what="scope probe")


@dataclass(frozen=True)
class Prober:
    redis: redis.Redis
    api: HttpxKindeApi
    store: DeadLetterStore
    replayer: Replayer

    def tick(self, interval_s: float) -> int:
        """Probe and replay if this replica takes the interval's slot; how many events were replayed."""
        if not take_slot(self.redis, interval_s, worker_id()):
            return 0
        return replay_granted(self.api, self.store, self.replayer)


def build_prober(settings: Settings) -> Prober:
    """The prober over its own Redis client, Kinde client (worker/entrypoints/bootstrap.py) and broker (after fork)."""
    client = build_redis(settings)
    broker = build_broker(settings)
    store = RedisDeadLetterStore(client)

    def converge(customer_id: str, reason: str) -> None:
        broker.enqueue(converge_message(customer_id, reason))

    history = RedisHistory(client, ttl_s=settings.history_ttl_s)
    # replays are bulk work, as `rolesync dlq replay`'s: every event of the scope's whole outage comes at once
    replay_event = partial(enqueue_to_broker, broker=broker, bulk=True)
    replayer = Replayer(store, replay_event, converge, history=history, by="scope_probe", send=broker.enqueue)
    return Prober(client, build_kinde_client(settings, client), store, replayer)


def run() -> None:
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    interval_s = settings.scope_probe_interval_s
    if interval_s <= 0:
        return
    prober = build_prober(settings)
    # Redis or Kinde down: the next interval probes again
    interval_slot.every_interval(partial(prober.tick, interval_s), pause_s=min(5.0, interval_s / 5),
                                 failed="scope_probe_failed")  # fmt: skip
