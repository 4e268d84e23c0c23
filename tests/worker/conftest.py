"""An in-process worker core over real Redis with a fake Kinde: for the pure logic of handlers."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis

from common.customers.history import RedisHistory
from common.customers.links import RedisLinkStore
from common.entitlements.customer import RedisEntitlementStore
from common.entitlements.grants import RedisGrantStore
from common.entitlements.manual_grants import RedisHandGrantStore
from common.entitlements.shadow_writes import RedisShadowLog
from common.entitlements.snapshots import RedisSnapshotStore
from common.guard.members import RedisMemberCache
from common.guard.usage import RedisUsageStore
from common.infra.connections import redis_client
from common.infra.deadletters import RedisDeadLetterStore
from common.plans.mapping import PlanMap, parse_plans
from common.plans.payments import RedisPaymentStore
from common.settings import Secret, Settings
from tests.worker.fakes import FakeKinde
from worker.convergence.converge import Converger
from worker.convergence.deleted import RedisDeletions
from worker.convergence.targets import RedisTargetLocks
from worker.customers.customer_state import CustomerStates
from worker.customers.park import Converge, Parking
from worker.customers.rebuild import Rebuilds, Stepper, learner
from worker.customers.rebuild_store import RedisRebuildStore
from worker.customers.resolve import Resolver
from worker.events.coalesce import RedisCoalescer
from worker.events.handlers import Deps
from worker.kinde.roles import RedisRoleCatalog
from worker.outputs.notify import Send, notifying

PLANS = parse_plans('[plans]\nplan_subscriber = ["role_subscriber"]\nplan_client = ["role_client"]\n')


@dataclass
class World:
    deps: Deps
    kinde: FakeKinde
    redis: redis.Redis
    dead_letters: RedisDeadLetterStore
    enqueued: list[tuple[dict[str, Any], dict[str, Any], int]] = field(default_factory=list)
    rebuild_chunks: list[str] = field(default_factory=list)  # holders of the `rebuild_index` messages sent

    def run_rebuilds(self, max_chunks: int = 1000) -> int:
        """Run every rebuild chunk sent (and those they send) as the `rebuild_index` actor would; how many ran."""
        ran = 0
        while self.rebuild_chunks and ran < max_chunks:
            self.deps.resolver.rebuilds.run_chunk(self.rebuild_chunks.pop(0))
            ran += 1
        return ran


def build_world(
    url: str,
    *,
    lease_poll_s: float = 0.3,
    plans: PlanMap = PLANS,
    chunk_s: float = 30.0,
    notify: Send | None = None,
    converge: Converge | None = None,  # where the passes a learned link asks for go (none: not asked)
    clock: Callable[[], float] = time.time,  # when hand grants end
    # ROLESYNC_MODE=shadow: passes record what they would write (common/entitlements/shadow_writes.py)
    shadow: bool = False,
) -> World:
    client = redis_client(Settings(redis_url=Secret(url)))
    kinde, enqueued, chunks = FakeKinde(), [], []
    links, dead_letters, payments = RedisLinkStore(client), RedisDeadLetterStore(client), RedisPaymentStore(client)
    catalog, grants, locks = RedisRoleCatalog(client, kinde), RedisGrantStore(client), RedisTargetLocks(client)
    history = RedisHistory(client, ttl_s=3600)
    parking = Parking(links, dead_letters, lambda c, m, d: enqueued.append((c, m, d)), converge, grants=grants,
                      history=history, b2c_org=lambda: "org_default")  # fmt: skip
    members = RedisMemberCache(client)
    converger = Converger(kinde, catalog, plans, lambda: "org_default", grants, links, locks, payments=payments,
                          entitlements=RedisEntitlementStore(client),
                          snapshots=notifying(RedisSnapshotStore(client), notify),
                          member_cache=members, deletions=RedisDeletions(client),
                          hand_grants=RedisHandGrantStore(client), clock=clock,
                          shadow=RedisShadowLog(client) if shadow else None)  # fmt: skip
    stepper = Stepper(kinde, links, "", learner(links, parking))
    rebuilds = Rebuilds(RedisRebuildStore(client), stepper, chunks.append, chunk_s=chunk_s)
    resolver = Resolver(kinde, links, parking, "", rebuilds)
    deps = Deps(
        links,
        RedisCoalescer(client, event_ttl_s=3600, poll_s=lease_poll_s),
        resolver,
        converger,
        parking,
        CustomerStates(client),
        settle_s=0.0,  # the settle delay is a retry policy; the logic under test is the same without it
        usage=RedisUsageStore(client),
        history=history,
        members=members,
    )
    return World(deps, kinde, client, dead_letters, enqueued, chunks)


@pytest.fixture
def world(redis_url: str) -> World:
    return build_world(redis_url)
