"""The hand grants' schedule: converge a grant's target when it changed, and end the grant at its `until`.

Adding, replacing or removing a hand grant (common/entitlements/manual_grants.py) marks its target due at once; a
grant with an `until` is also due then. Every worker replica runs `run` in a forked helper process
(`--fork-function`); each tick one replica takes `keys.HAND_GRANTS_SLOT` and:

1. ends every grant whose `until` has passed by the clock: the record goes (which marks its target
   due now) and the audit trail says so (`grants_expired`, by `rolesync`);
2. queues one `converge_target` pass per due target, and takes it off the schedule only if it was not
   marked due again meanwhile (a change landing mid-tick is converged at the next one).

The passes read the grants under the target's lease, by their own clock, so a grant whose `until`
passed gives nothing even before its record goes. A tick lost to a crash is done again by the next.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
import structlog

from common import keys
from common.customers.history import RedisHistory
from common.customers.links import RedisLinkStore
from common.entitlements.manual_grants import HandGrantStore, RedisHandGrantStore
from common.errors import ServiceError
from common.infra.audit_trail import Actor, Audit
from common.infra.connections import redis_errors
from common.infra.logs import configure_logging
from common.messages import converge_target_message
from common.settings import Settings
from worker.entrypoints.clients import build_redis
from worker.runtime.broker import build_broker
from worker.runtime.heartbeat import worker_id

log = structlog.get_logger(__name__)
TICK_S = 1.0
SCHEDULE = Actor("rolesync", "the grant's --until passed")
Enqueue = Callable[[str, str, str], None]  # (org code, user id, reason)


@dataclass(frozen=True)
class GrantSchedule:
    store: HandGrantStore
    enqueue: Enqueue
    audit: Audit | None
    customers_of_user: Callable[[str], list[str]] = lambda _: []
    clock: Callable[[], float] = time.time

    def tick(self) -> int:
        """End what has ended, then queue each due target's pass; how many passes were queued."""
        now = self.clock()
        for due in self.store.due(now):
            if due.kind == "expires":
                self._end(due.grant_id, now)
        queued = 0
        for due in self.store.due(now):
            if due.kind == "changed":
                self.enqueue(due.org_code, due.user_id, "hand_grant")
                queued += 1
            self.store.done(due, now)
        return queued

    def _end(self, grant_id: str, now: float) -> None:
        grant = self.store.get(grant_id)
        if grant is None or grant.active(now) or self.store.remove(grant_id, now) is None:
            return  # removed by hand, extended, or ended by another replica
        log.info("hand_grant_expired", grant_id=grant_id, user_id=grant.user_id, roles=list(grant.roles))
        if self.audit is not None:
            self.audit.record("grants_expired", SCHEDULE, self.customers_of_user(grant.user_id), grant=grant_id,
                              user_id=grant.user_id, org_code=grant.org_code, roles=list(grant.roles),
                              granted_reason=grant.reason, until=grant.until)  # fmt: skip


def take_slot(client: redis.Redis, holder: str) -> bool:
    with redis_errors("taking the hand grants' slot"):
        return bool(client.set(keys.HAND_GRANTS_SLOT, holder, nx=True, px=int(TICK_S * 1000)))


def build(settings: Settings) -> tuple[GrantSchedule, redis.Redis]:
    """The schedule over its own Redis client and broker (built after fork)."""
    client, broker = build_redis(settings), build_broker(settings)

    def enqueue(org_code: str, user_id: str, reason: str) -> None:
        broker.enqueue(converge_target_message(org_code, user_id, reason))

    audit = Audit(client, RedisHistory(client, ttl_s=settings.history_ttl_s))
    return GrantSchedule(RedisHandGrantStore(client), enqueue, audit, RedisLinkStore(client).customers_of_user), client


def run() -> None:
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    schedule, client = build(settings)
    while True:
        try:
            if take_slot(client, worker_id()):
                schedule.tick()
        except ServiceError as exc:  # Redis down: the next tick tries again
            log.warning("hand_grant_schedule_failed", error=str(exc)[:300], reason=exc.reason)
        time.sleep(TICK_S)
