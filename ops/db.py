"""`rolesync db migrate`: the Postgres entitlements table's schema, and its generation counter in Redis.

Applies the shipped migrations not applied yet (common/table/schema.py), then raises the Redis counter
that numbers table changes (common/table/table_outbox.py) to at least the table's highest generation,
so a Redis that lost its data numbers new changes above the rows already written (the writes do not
need it: the per-target check orders them, common/table/entitlements_table.py; the column stays monotone
for on-call). Safe to run any number of times, by several hosts at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.infra.connections import redis_client
from common.settings import Settings
from common.table.entitlements_table import TABLE
from common.table.postgres import connect, postgres_errors
from common.table.schema import migrate as apply_migrations
from common.table.table_outbox import TableOutbox


@dataclass(frozen=True)
class Migrated:
    applied: list[str]  # versions applied now; empty when the schema was up to date
    generation: int | None  # the Redis counter afterwards; None without REDIS_URL


def migrate(settings: Settings) -> Migrated:
    with connect(settings) as conn:
        applied = apply_migrations(conn)
        with postgres_errors("reading the table's highest generation"):
            found = conn.execute(f"SELECT coalesce(max(generation), 0) FROM {TABLE}").fetchone()  # noqa: S608
    if not settings.redis_url:
        return Migrated(applied, None)
    highest = int(str(found[0])) if found else 0
    return Migrated(applied, TableOutbox(redis_client(settings)).generation_at_least(highest))
