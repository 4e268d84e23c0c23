"""The real worker keeps the Postgres table, and its drain process catches up after an outage."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import redis

from common.table.schema import migrate
from common.table.table_outbox import TableOutbox
from launch.postgres_server import EmbeddedPostgres
from tests.e2e.conftest import Pipe, e2e_pipe
from tests.procs import wait_until

pytestmark = pytest.mark.e2e
TABLE_DB = 12


@pytest.fixture(scope="module")
def table_server() -> Iterator[EmbeddedPostgres]:
    """Its own server, so the test can stop and start it."""
    with EmbeddedPostgres() as server:
        with psycopg.connect(server.url, autocommit=True) as conn:
            migrate(conn)
        yield server


@pytest.fixture(scope="module")
def pipe(
    redis_server_url: str, tmp_path_factory: pytest.TempPathFactory, table_server: EmbeddedPostgres
) -> Iterator[Pipe]:
    """Its own pipe: the table's worker helper runs only where ROLESYNC_POSTGRES_URL is set."""
    env = {"ROLESYNC_POSTGRES_URL": table_server.url}
    with e2e_pipe(redis_server_url, tmp_path_factory.mktemp("e2e-table"), env=env, db=TABLE_DB) as running:
        yield running


def row_of(server: EmbeddedPostgres, user_id: str) -> dict[str, Any] | None:
    try:
        with psycopg.connect(server.url, connect_timeout=3) as conn:
            cursor = conn.execute("SELECT roles, plans, generation FROM rolesync_entitlements WHERE user_id = %s",
                                  (user_id,))  # fmt: skip
            found = cursor.fetchone()
    except psycopg.OperationalError:
        return None
    return {"roles": found[0], "plans": [p["code"] for p in found[1]], "generation": found[2]} if found else None


def test_the_table_follows_plans_and_catches_up_after_postgres_was_down(
    pipe: Pipe, table_server: EmbeddedPostgres
) -> None:
    user = pipe.kinde.create_user(email="table@example.com")
    pipe.kinde.change_plan(user["customer_id"], "plan_subscriber")
    wait_until(lambda: (row_of(table_server, user["id"]) or {}).get("roles") == ["role_subscriber"],
               timeout=30, what="the subscriber's row")  # fmt: skip

    table_server.stop()
    pipe.kinde.change_plan(user["customer_id"], "plan_client")
    wait_until(lambda: pipe.kinde.user_roles(user["id"]) == ["role_client"], timeout=30, what="roles while down")
    outbox = TableOutbox(redis.Redis.from_url(pipe.redis_url, decode_responses=True))
    wait_until(lambda: outbox.lag(time.time()).pending >= 1, timeout=30, what="the change waiting in Redis")

    table_server.start()  # the worker's drain process writes it without any new event
    wait_until(lambda: (row_of(table_server, user["id"]) or {}).get("roles") == ["role_client"],
               timeout=60, what="the row caught up")  # fmt: skip
    wait_until(lambda: outbox.lag(time.time()).pending == 0, timeout=30, what="nothing pending")

    pipe.kinde.cancel_plan(user["customer_id"])
    wait_until(lambda: row_of(table_server, user["id"]) is None and pipe.kinde.user_roles(user["id"]) == [],
               timeout=30, what="the row deleted at cancel")  # fmt: skip
