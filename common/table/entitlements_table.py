"""The Postgres entitlements table (`rolesync_entitlements`): the port, its psycopg adapter and a fake.

A change (common/table/table_outbox.py) is applied in one transaction that first takes a per-target
advisory lock, then asks `still_newest()` whether the change is still the target's newest one in
Redis, and only then writes. Two writers of one target take turns, and the second one, holding the
lock after the first committed, finds its change superseded if a newer one was noted: so an older
pass never overwrites a newer row, nor brings back a row a newer change deleted. That check is the
whole ordering: the write itself compares no generations. A guard on the row's stored generation
would add nothing while Redis keeps its counter, and once Redis lost it (a restart without its data)
it would silently drop every change until the counter climbed past the old rows again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, Protocol

import psycopg_pool
from psycopg.types.json import Jsonb

from common.entitlements.grants import Target
from common.table.postgres import postgres_errors
from common.table.table_outbox import Change

TABLE = "rolesync_entitlements"
_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
_UPSERT = f"""
INSERT INTO {TABLE} AS t (org_code, user_id, customer_ids, plans, features, roles, standing, usage,
                         hand_grants, updated_at, generation)
VALUES (%(org_code)s, %(user_id)s, %(customer_ids)s, %(plans)s, %(features)s, %(roles)s, %(standing)s,
        %(usage)s, %(hand_grants)s, %(updated_at)s, %(generation)s)
ON CONFLICT (org_code, user_id) DO UPDATE SET
    customer_ids = EXCLUDED.customer_ids, plans = EXCLUDED.plans, features = EXCLUDED.features,
    roles = EXCLUDED.roles, standing = EXCLUDED.standing, usage = EXCLUDED.usage,
    hand_grants = EXCLUDED.hand_grants, updated_at = EXCLUDED.updated_at, generation = EXCLUDED.generation
"""  # noqa: S608 - the table name is ours
_DELETE = f"DELETE FROM {TABLE} WHERE org_code = %s AND user_id = %s"  # noqa: S608


class EntitlementsTable(Protocol):
    def apply(self, change: Change, still_newest: Callable[[], bool]) -> bool:
        """Write the change unless `still_newest()` says a newer one was noted; True if written."""

    def row(self, target: Target) -> dict[str, Any] | None: ...


def _params(change: Change) -> dict[str, Any]:
    assert change.row is not None
    found: dict[str, Any] = asdict(change.row)
    for column in ("plans", "features", "standing", "usage", "hand_grants"):
        found[column] = Jsonb(found[column])
    found["updated_at"] = datetime.fromtimestamp(change.row.updated_at, UTC)
    return {**found, "generation": change.generation}


class PostgresEntitlementsTable:
    def __init__(self, pool: psycopg_pool.ConnectionPool) -> None:
        self._pool = pool

    def apply(self, change: Change, still_newest: Callable[[], bool]) -> bool:
        target = Target.from_key(change.target_key)
        with postgres_errors("writing the entitlements table"), self._pool.connection() as conn:
            conn.execute(_LOCK, (change.target_key,))
            if not still_newest():
                return False
            if change.row is None:
                conn.execute(_DELETE, (target.org_code, target.user_id))
            else:
                conn.execute(_UPSERT, _params(change))
        return True

    def row(self, target: Target) -> dict[str, Any] | None:
        """One row as a dict of its columns (tests and on-call)."""
        with postgres_errors("reading the entitlements table"), self._pool.connection() as conn:
            cursor = conn.execute(f"SELECT * FROM {TABLE} WHERE org_code = %s AND user_id = %s",  # noqa: S608
                                  (target.org_code, target.user_id))  # fmt: skip
            found = cursor.fetchone()
            names = [c.name for c in cursor.description or []]
        return dict(zip(names, found, strict=True)) if found else None

    def close(self) -> None:
        self._pool.close()


class InMemoryEntitlementsTable:
    """The port's fake, for pure-logic tests: the same check, no server."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[int, dict[str, Any]]] = {}

    def apply(self, change: Change, still_newest: Callable[[], bool]) -> bool:
        if not still_newest():
            return False
        if change.row is None:
            self.rows.pop(change.target_key, None)
        else:
            self.rows[change.target_key] = (change.generation, asdict(change.row))
        return True

    def row(self, target: Target) -> dict[str, Any] | None:
        held = self.rows.get(target.key)
        return {**held[1], "generation": held[0]} if held else None
