"""The worker's Redis and Postgres clients, built only here and in the composition root (bootstrap.py).

Apart from bootstrap, whose `build_deps` uses them, only the forked table drain (worker/outputs/table_sync.py)
calls these directly: bootstrap imports the drain's `TableSync`, so the drain cannot import bootstrap.
"""

from __future__ import annotations

import redis

from common.infra.connections import redis_client
from common.settings import Settings
from common.table.entitlements_table import PostgresEntitlementsTable
from common.table.postgres import postgres_pool


def build_redis(settings: Settings, timeout_s: float = 10.0) -> redis.Redis:
    """A decoded Redis client for one process's stores (the broker builds its own, undecoded)."""
    return redis_client(settings, timeout_s=timeout_s)


def build_table(settings: Settings, *, pool_size: int) -> PostgresEntitlementsTable:
    """The Postgres entitlements table over its own pool (`pool_size`: threads writing one row at a time each)."""
    return PostgresEntitlementsTable(postgres_pool(settings, max_size=pool_size))
