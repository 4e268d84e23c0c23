"""The table drain: changes reach Postgres after Redis lost its counter, an unreadable change
holds up no other, a stuck writer's lock is waited for only briefly.

Real Redis and real Postgres.
"""

from __future__ import annotations

import json
import threading
import time

import psycopg
import pytest
import redis

from common import keys
from common.entitlements.grants import Target
from common.errors import RetryableError
from common.settings import Secret, Settings
from common.table.entitlements_table import PostgresEntitlementsTable
from common.table.postgres import postgres_pool
from common.table.table_outbox import Change, TableOutbox
from common.table.table_rows import TableRow
from worker.outputs.table_sync import TableSync, tick

pytestmark = pytest.mark.integration  # real Redis and PostgreSQL servers, one of them private


# --- 3. Redis restarts without its data: the table's generation counter starts again from 1 ---


def _row(roles: list[str]) -> TableRow:
    return TableRow("org_default", "kp_1", ["customer_1"], [], [], roles, {}, {}, 1.0)


def test_changes_after_redis_lost_its_counter_still_reach_the_table(redis_url: str, entitlements_db: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    settings = Settings(redis_url=Secret(redis_url), postgres_url=Secret(entitlements_db))
    table = PostgresEntitlementsTable(postgres_pool(settings))
    sync = TableSync(TableOutbox(client), table)
    key, target = "org_default|kp_1", Target("org_default", "kp_1")
    for roles in (["role_a"], ["role_b"], ["role_c"]):
        sync.write(Change(key, sync.outbox.note(key, _row(roles), time.time()), _row(roles)))
    client.flushdb()  # a Redis without persistence restarted; the workers and Postgres did not
    sync.write(Change(key, sync.outbox.note(key, _row(["role_d"]), time.time()), _row(["role_d"])))
    found = sync.table.row(target)
    assert found is not None
    assert found["roles"] == ["role_d"]  # was: role_c kept by the generation guard, the change cleared
    sync.write(Change(key, sync.outbox.note(key, None, time.time()), None))  # then it holds nothing
    assert sync.table.row(target) is None
    assert sync.outbox.lag(time.time()).pending == 0
    table.close()


# --- 7. a change the drain cannot read (a newer worker's row shape in a rolling deploy) ---


def test_a_change_the_drain_cannot_read_holds_up_no_other_and_the_helper_lives_on(
    redis_url: str, entitlements_db: str
) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    settings = Settings(redis_url=Secret(redis_url), postgres_url=Secret(entitlements_db))
    table = PostgresEntitlementsTable(postgres_pool(settings))
    sync, now = TableSync(TableOutbox(client), table), time.time()
    sync.outbox.note("org_default|kp_1", _row(["role_a"]), now)
    newer = json.loads(client.hget(keys.TABLE_CHANGES, "org_default|kp_1") or "{}")
    newer["row"]["seats_used"] = 3  # a column this version does not know yet
    client.hset(keys.TABLE_CHANGES, "org_default|kp_1", json.dumps(newer))
    good = TableRow("org_default", "kp_2", ["customer_2"], [], [], ["role_b"], {}, {}, 1.0)
    sync.outbox.note("org_default|kp_2", good, now + 1)
    # was: TypeError out of drain (oldest first), out of tick, out of the helper's loop: the drain died
    assert tick(sync, failing=False) is False
    assert table.row(Target("org_default", "kp_2")) is not None
    assert sync.outbox.pending(10) == ["org_default|kp_1"]  # it waits for a worker that can read it
    table.close()


# --- 9. a writer stuck holding a target's table lock (its host frozen, its connection alive) ---


def test_an_in_pass_write_waits_for_a_stuck_writers_lock_only_briefly(redis_url: str, entitlements_db: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    settings = Settings(redis_url=Secret(redis_url), postgres_url=Secret(entitlements_db))
    table = PostgresEntitlementsTable(postgres_pool(settings))
    sync, key = TableSync(TableOutbox(client), table), "org_default|kp_1"
    outcome: list[object] = []

    def write() -> None:
        try:
            noted = sync.outbox.note(key, _row(["role_a"]), time.time())
            outcome.append(sync.write(Change(key, noted, _row(["role_a"]))))
        except RetryableError as exc:
            outcome.append(exc)

    with psycopg.connect(entitlements_db) as stuck:  # another writer's open transaction, frozen mid-write
        stuck.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (key,))
        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        writer.join(timeout=30)
        # was: blocked in Postgres without end, under the target's lease and past Dramatiq's time limit
        assert not writer.is_alive()
        assert isinstance(outcome[0], RetryableError)  # deferred: the change waits in Redis for the drain
        other = TableRow("org_default", "kp_2", ["customer_2"], [], [], ["role_b"], {}, {}, 1.0)
        sync.outbox.note("org_default|kp_2", other, time.time())
        assert sync.drain() == 1  # the stuck target (oldest) holds up no other
        assert sync.outbox.pending(10) == [key]
        stuck.rollback()
    assert sync.drain() == 1
    table.close()
