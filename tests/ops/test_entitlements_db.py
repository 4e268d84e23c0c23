"""`rolesync db migrate`, the doctor's Postgres check and the table's lag in `rolesync status`, on real servers."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
import redis

from common.settings import Secret, Settings
from common.table.schema import VERSIONS_TABLE, shipped
from common.table.table_outbox import TableOutbox
from common.table.table_rows import TableRow
from doctor.checks import run_check
from doctor.postgres import NAME, check_postgres
from doctor.report import Status
from doctor.session import Session
from launch.processes import free_port
from ops.status import TABLE_LAG_ALERT_S, gather
from ops.stores import open_stores
from tests.ops.conftest import run_cli


@pytest.fixture
def fresh_db(postgres_url: str) -> Iterator[str]:
    """An empty database of its own on the test server: nothing migrated yet."""
    name = f"rolesync_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield postgres_url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def _doctor(url: str) -> Session:
    return Session(Settings(postgres_url=Secret(url)), http=None)  # type: ignore[arg-type]  # no HTTP in this check


def test_migrate_creates_the_table_once_and_is_idempotent(fresh_db: str, redis_url: str) -> None:
    env = {"ROLESYNC_POSTGRES_URL": fresh_db, "REDIS_URL": redis_url}
    first = run_cli(env, "db", "migrate")
    assert first.exit_code == 0, first.output
    assert "migrations applied: 0001_entitlements" in first.output
    again = run_cli(env, "db", "migrate")
    assert "migrations applied: none (the schema is up to date)" in again.output
    with psycopg.connect(fresh_db) as conn:
        versions = [r[0] for r in conn.execute(f"SELECT version FROM {VERSIONS_TABLE}")]  # noqa: S608
        columns = {r[0] for r in conn.execute("SELECT column_name FROM information_schema.columns "
                                              "WHERE table_name = 'rolesync_entitlements'")}  # fmt: skip
    assert versions == [m.version for m in shipped()]
    assert {"org_code", "user_id", "customer_ids", "plans", "features", "roles", "standing", "usage",
            "updated_at", "generation"} <= columns  # fmt: skip


def test_migrate_raises_the_redis_counter_above_the_tables_rows(entitlements_db: str, redis_url: str) -> None:
    with psycopg.connect(entitlements_db, autocommit=True) as conn:
        conn.execute("INSERT INTO rolesync_entitlements (org_code, user_id, updated_at, generation) "
                     "VALUES ('org_a', 'kp_1', now(), 500)")  # fmt: skip
    result = run_cli({"ROLESYNC_POSTGRES_URL": entitlements_db, "REDIS_URL": redis_url}, "db", "migrate")
    assert "table generation counter in Redis: 500" in result.output
    row = TableRow("org_a", "kp_2", [], [], [], ["r"], {}, {}, 1.0)
    assert TableOutbox(redis.Redis.from_url(redis_url)).note("org_a|kp_2", row, time.time()) == 501


def test_migrate_without_a_postgres_url_says_which_variable(redis_url: str) -> None:
    result = run_cli({"REDIS_URL": redis_url, "ROLESYNC_POSTGRES_URL": ""}, "db", "migrate")
    assert result.exit_code == 2
    assert "ROLESYNC_POSTGRES_URL is not set" in result.output


def test_doctor_fails_an_unmigrated_schema_and_passes_a_migrated_one(fresh_db: str) -> None:
    before = check_postgres(_doctor(fresh_db))
    assert (before.status, before.fix) == (Status.FAIL, "run `rolesync db migrate`")
    run_cli({"ROLESYNC_POSTGRES_URL": fresh_db}, "db", "migrate")
    assert check_postgres(_doctor(fresh_db)).status is Status.OK


def test_doctor_reports_an_unreachable_postgres_without_its_password() -> None:
    url = f"postgresql://rolesync:hunter2secret@127.0.0.1:{free_port()}/x"
    found = run_check(NAME, check_postgres, _doctor(url))
    assert found.status is Status.FAIL
    assert "hunter2secret" not in json.dumps([found.summary, found.fix])


def test_doctor_passes_when_no_table_is_configured() -> None:
    assert check_postgres(_doctor("")).status is Status.OK


def test_status_shows_how_far_the_table_lags(redis_url: str) -> None:
    settings = Settings(redis_url=Secret(redis_url), postgres_url=Secret("postgresql://unused/x"))
    stores = open_stores(settings)
    outbox, now = TableOutbox(stores.redis), time.time()
    assert gather(stores, settings, now).entitlements_table == outbox.lag(now)
    assert outbox.lag(now).pending == 0
    outbox.note("org_a|kp_1", None, now)
    outbox.note("org_a|kp_2", None, now + 5)
    later = gather(stores, settings, now + TABLE_LAG_ALERT_S + 10)
    assert later.entitlements_table is not None
    assert later.entitlements_table.to_dict() == {"pending": 2, "oldest_s": TABLE_LAG_ALERT_S + 10}
    assert any("entitlements table lags: 2 target(s)" in p for p in later.problems)
    assert gather(stores, Settings(redis_url=Secret(redis_url)), now).entitlements_table is None


def test_rolesync_status_prints_the_tables_lag(redis_url: str) -> None:
    env = {"REDIS_URL": redis_url, "ROLESYNC_POSTGRES_URL": "postgresql://unused/x"}
    assert "entitlements table: up to date" in run_cli(env, "status").output
    TableOutbox(redis.Redis.from_url(redis_url)).note("org_a|kp_1", None, time.time() - 90)
    shown = run_cli(env, "status")
    assert "entitlements table: 1 target(s) pending, oldest 1m" in shown.output
    assert "the Postgres entitlements table lags: 1 target(s)" in shown.output
    assert shown.exit_code == 1
    assert "entitlements table" not in run_cli({"REDIS_URL": redis_url, "ROLESYNC_POSTGRES_URL": ""}, "status").output
