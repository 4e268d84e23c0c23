"""What on-call commands read and write: Redis and the stores over it, built once per command."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from common.customers.history import RedisHistory
from common.customers.links import RedisLinkStore
from common.entitlements.grants import RedisGrantStore
from common.infra.connections import redis_client
from common.infra.deadletters import RedisDeadLetterStore
from common.plans.payments import RedisPaymentStore
from common.settings import Settings
from ops.audit import Audit
from worker.customers.customer_state import CustomerStates


@dataclass(frozen=True)
class Stores:
    redis: redis.Redis
    dead_letters: RedisDeadLetterStore
    links: RedisLinkStore
    states: CustomerStates
    payments: RedisPaymentStore
    grants: RedisGrantStore
    history: RedisHistory  # customers' timelines: on-call's replays are on them too


def open_stores(settings: Settings) -> Stores:
    client = redis_client(settings)
    links, states = RedisLinkStore(client), CustomerStates(client)
    history = RedisHistory(client, ttl_s=settings.history_ttl_s)
    return Stores(
        client, RedisDeadLetterStore(client), links, states, RedisPaymentStore(client), RedisGrantStore(client), history
    )


def open_audit(stores: Stores) -> Audit:
    """On-call's audit trail over the same Redis: the customers' timelines and the fleet's list (ops/audit.py)."""
    return Audit(stores.redis, stores.history)


def audit_over(client: redis.Redis, settings: Settings) -> Audit:
    """The audit trail over a client of one's own (a sweeper's fleet)."""
    return Audit(client, RedisHistory(client, ttl_s=settings.history_ttl_s))
