"""The entitlements table's schema: versioned SQL files shipped in the package (common/table/migrations/).

`rolesync db migrate` applies, in name order, each file not yet recorded in
`rolesync_schema_migrations`, each in its own transaction with its record; a transaction-level
advisory lock makes two migrates at once take turns. Files are idempotent themselves
(`IF NOT EXISTS`), so a migrate that ran a file but lost its record before commit can run it again.
`rolesync doctor` compares the recorded versions with the shipped ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import psycopg

from common.table.postgres import postgres_errors

VERSIONS_TABLE = "rolesync_schema_migrations"
_LOCK_KEY = 0x726F6C6573796E63  # "rolesync": one advisory lock id for migrations
_CREATE_VERSIONS = f"""CREATE TABLE IF NOT EXISTS {VERSIONS_TABLE} (
    version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"""


@dataclass(frozen=True)
class Migration:
    version: str  # the file name without .sql, e.g. 0001_entitlements
    sql: str


def shipped() -> list[Migration]:
    folder = resources.files("common.table").joinpath("migrations")
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [Migration(f.name.removesuffix(".sql"), f.read_text(encoding="utf-8")) for f in files]


def applied(conn: psycopg.Connection[tuple[object, ...]]) -> set[str]:
    """The versions recorded; empty when the versions table does not exist yet."""
    with postgres_errors("reading the applied migrations"):
        found = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (VERSIONS_TABLE,)).fetchone()
        if not (found and found[0]):
            return set()
        return {str(r[0]) for r in conn.execute(f"SELECT version FROM {VERSIONS_TABLE}")}  # noqa: S608


def missing(conn: psycopg.Connection[tuple[object, ...]]) -> list[str]:
    done = applied(conn)
    return [m.version for m in shipped() if m.version not in done]


def migrate(conn: psycopg.Connection[tuple[object, ...]]) -> list[str]:
    """Apply what is not applied yet; the versions applied now (empty: the schema was up to date)."""
    ran = []
    for migration in shipped():
        with postgres_errors(f"applying migration {migration.version}"), conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            conn.execute(_CREATE_VERSIONS)
            if conn.execute(f"SELECT 1 FROM {VERSIONS_TABLE} WHERE version = %s",  # noqa: S608
                            (migration.version,)).fetchone():  # fmt: skip
                continue
            conn.execute(migration.sql.encode())
            conn.execute(f"INSERT INTO {VERSIONS_TABLE} (version) VALUES (%s)", (migration.version,))  # noqa: S608
            ran.append(migration.version)
    return ran
