"""The Postgres entitlements table follows the passes: real Redis, real PostgreSQL, a recording fake Kinde."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from common import keys
from common.entitlements.grants import Target
from common.entitlements.snapshots import RedisSnapshotStore
from common.errors import RetryableError
from common.guard.usage import RedisUsageStore
from common.settings import Secret, Settings
from common.table.entitlements_table import InMemoryEntitlementsTable, PostgresEntitlementsTable
from common.table.postgres import UNAVAILABLE, postgres_pool
from common.table.schema import migrate
from common.table.table_outbox import Change, Lag, TableOutbox
from common.table.table_rows import TableRow
from launch.postgres_server import EmbeddedPostgres
from tests.worker.conftest import World, build_world
from tests.worker.convergence.test_convergence import paying_org, personal, user_updated
from tests.worker.convergence.test_snapshot import FEATURES
from tests.worker.events.test_handlers import OLD, billing, user_created
from tests.worker.events.test_payments import SUSPEND, payment
from tests.worker.events.test_payments import subscribed as subscribed_client
from worker.entrypoints.bootstrap import snapshot_store
from worker.entrypoints.launcher import dramatiq_argv
from worker.events.handlers import handle_event
from worker.outputs.table_feed import QUIET_S, TableFeed
from worker.outputs.table_sync import TableSync, tick


@dataclasses.dataclass
class Fed:
    world: World
    table: PostgresEntitlementsTable
    sync: TableSync

    def row(self, user: str = "kp_1", org: str = "org_default") -> dict[str, Any] | None:
        return self.table.row(Target(org, user))

    def limits(self, user: str = "kp_1", org: str = "org_default") -> dict[str, int | None]:
        found = self.row(user, org)
        assert found is not None
        return {f["feature_code"]: f["limit_max"] for f in found["features"]}


def fed(world: World, postgres_url: str) -> Fed:
    """The world's passes with the table fed, as the worker builds it when ROLESYNC_POSTGRES_URL is set."""
    settings = Settings(redis_url=Secret("redis://unused"), postgres_url=Secret(postgres_url))
    table = PostgresEntitlementsTable(postgres_pool(settings))
    sync = TableSync(TableOutbox(world.redis), table)
    feed = TableFeed(RedisSnapshotStore(world.redis), sync, RedisUsageStore(world.redis).of)
    converger = dataclasses.replace(world.deps.converger, snapshots=feed)
    world.deps = dataclasses.replace(world.deps, converger=converger)
    return Fed(world, table, sync)


@pytest.fixture
def table_world(redis_url: str, entitlements_db: str) -> Iterator[Fed]:
    found = fed(build_world(redis_url), entitlements_db)
    yield found
    found.table.close()


def test_the_row_follows_sign_up_upgrade_and_cancel(table_world: Fed) -> None:
    world = table_world.world
    world.kinde.features_by_plan = FEATURES
    world.kinde.add_user("kp_1", "customer_1")
    assert handle_event(world.deps, user_created("ev_u", "kp_1"), OLD) == "converged"
    assert table_world.row() is None  # signed up, no plan yet: the target holds nothing

    world.kinde.set_plan("customer_1", "plan_subscriber")
    handle_event(world.deps, billing("ev_1", "customer_1"), OLD)
    first = table_world.row()
    assert first is not None
    assert (first["customer_ids"], first["roles"]) == (["customer_1"], ["role_subscriber"])
    assert [p["code"] for p in first["plans"]] == ["plan_subscriber"]
    assert table_world.limits() == {"projects": 3, "seats": 1}
    assert first["standing"] == {"customer_1": {"payment_standing": "ok", "suspended": False}}

    world.kinde.set_plan("customer_1", "plan_client")
    handle_event(world.deps, billing("ev_2", "customer_1"), OLD)
    upgraded = table_world.row()
    assert upgraded is not None
    assert upgraded["roles"] == ["role_client"]
    assert table_world.limits() == {"api_calls": None, "seats": 5}
    assert upgraded["generation"] > first["generation"]
    assert upgraded["updated_at"] >= first["updated_at"]

    world.kinde.set_plan("customer_1", None)
    handle_event(world.deps, billing("ev_3", "customer_1"), OLD)
    assert table_world.row() is None  # cancelled: nothing held, the row is deleted
    assert TableOutbox(world.redis).lag(time.time()).pending == 0


def test_two_covering_customers_make_one_row_with_the_union(table_world: Fed) -> None:
    world = table_world.world
    world.kinde.features_by_plan = FEATURES
    paying_org(world, "org_acme", "customer_org", "plan_client", "kp_1")
    assert table_world.row("kp_1", "org_acme") is not None

    world.kinde.users["kp_1"]["organizations"] = ["org_acme"]
    personal(world, "kp_1", "customer_me", "plan_subscriber")
    handle_event(world.deps, user_updated("ev_u1", "kp_1"), OLD)
    handle_event(world.deps, billing("ev_b1", "customer_me", user_id="kp_1", org_code="org_acme"), OLD)
    both = table_world.row("kp_1", "org_acme")
    assert both is not None
    assert both["customer_ids"] == ["customer_me", "customer_org"]
    assert both["roles"] == ["role_client", "role_subscriber"]
    assert table_world.limits("kp_1", "org_acme") == {"api_calls": None, "projects": 3, "seats": 5}
    assert sorted(both["standing"]) == ["customer_me", "customer_org"]

    world.kinde.set_plan("customer_me", None)  # the personal plan ends: the org's grant stays
    handle_event(world.deps, billing("ev_b2", "customer_me", user_id="kp_1", org_code="org_acme"), OLD)
    after = table_world.row("kp_1", "org_acme")
    assert after is not None
    assert after["roles"] == ["role_client"]
    assert table_world.limits("kp_1", "org_acme") == {"api_calls": None, "seats": 5}


def test_a_payment_suspension_shows_in_the_row_and_lifts_when_paid(redis_url: str, entitlements_db: str) -> None:
    table_world = fed(build_world(redis_url, plans=SUSPEND), entitlements_db)
    world = table_world.world
    world.kinde.features_by_plan = FEATURES
    subscribed_client(world)
    assert table_world.limits() == {"api_calls": None, "seats": 5}

    handle_event(world.deps, payment("ev_f", "customer.payment_failed", "2026-11-22T10:00:00Z"), OLD)
    failing = table_world.row()
    assert failing is not None
    assert (failing["roles"], failing["features"]) == (["role_past_due"], [])
    assert failing["standing"] == {"customer_1": {"payment_standing": "failing", "suspended": True}}
    assert [p["code"] for p in failing["plans"]] == ["plan_client"]

    handle_event(world.deps, payment("ev_s", "customer.payment_succeeded", "2026-11-22T11:00:00Z"), OLD)
    paid = table_world.row()
    assert paid is not None
    assert paid["roles"] == ["role_client"]
    assert paid["standing"] == {"customer_1": {"payment_standing": "ok", "suspended": False}}
    assert table_world.limits() == {"api_calls": None, "seats": 5}
    table_world.table.close()


def test_metered_usage_is_in_the_row(table_world: Fed) -> None:
    world = table_world.world
    world.kinde.add_user("kp_1", "customer_1")
    world.kinde.set_plan("customer_1", "plan_subscriber")
    handle_event(world.deps, user_created("ev_u", "kp_1"), OLD)
    meter = {"type": "customer.meter_usage_updated", "event_id": "ev_m", "timestamp": "2026-11-22T10:00:00Z",
             "data": {"customer_id": "customer_1", "feature_code": "api_calls", "meter_value": "42"}}  # fmt: skip
    handle_event(world.deps, meter, OLD)
    found = table_world.row()
    assert found is not None
    assert found["usage"]["customer_1"]["api_calls"]["value"] == 42.0


def test_a_deleted_users_rows_are_deleted(table_world: Fed) -> None:
    world = table_world.world
    world.kinde.add_user("kp_1", "customer_1")
    world.kinde.set_plan("customer_1", "plan_subscriber")
    handle_event(world.deps, user_created("ev_u", "kp_1"), OLD)
    assert table_world.row() is not None
    handle_event(world.deps, {"type": "user.deleted", "event_id": "ev_d", "data": {"user": {"id": "kp_1"}}}, OLD)
    assert table_world.row() is None


def _row(roles: list[str], at: float) -> TableRow:
    return TableRow("org_default", "kp_1", ["customer_1"], [], [], roles, {}, {}, at)


def test_an_older_change_never_overwrites_a_newer_row(table_world: Fed) -> None:
    outbox, table = table_world.sync.outbox, table_world.table
    older_gen = outbox.note("org_default|kp_1", _row(["role_old"], 1.0), time.time())
    older = Change("org_default|kp_1", older_gen, _row(["role_old"], 1.0))
    outbox.note("org_default|kp_1", _row(["role_new"], 2.0), time.time())
    assert table_world.sync.sync("org_default|kp_1")
    # the older writer comes late: its change is no longer the newest, so it writes nothing
    assert table.apply(older, lambda: outbox.newest(older.target_key) == older) is False
    found = table_world.row()
    assert found is not None
    assert (found["roles"], found["generation"]) == (["role_new"], older_gen + 1)


def test_an_older_change_never_brings_back_a_deleted_row(table_world: Fed) -> None:
    outbox = table_world.sync.outbox
    gen = outbox.note("org_default|kp_1", _row(["role_old"], 1.0), time.time())
    stale = Change("org_default|kp_1", gen, _row(["role_old"], 1.0))
    outbox.note("org_default|kp_1", None, time.time())  # then the target came to hold nothing
    assert table_world.sync.sync("org_default|kp_1")
    assert table_world.row() is None
    assert table_world.table.apply(stale, lambda: outbox.newest(stale.target_key) == stale) is False
    assert table_world.row() is None


def test_a_change_postgres_refuses_stays_pending_and_holds_up_no_other(table_world: Fed) -> None:
    outbox, now = table_world.sync.outbox, time.time()
    outbox.note("org_default|kp_1", _row(["role_\x00"], 1.0), now)  # text cannot hold NUL: refused
    outbox.note("org_default|kp_2", TableRow("org_default", "kp_2", [], [], [], ["r"], {}, {}, 1.0), now + 1)
    assert table_world.sync.drain() == 1
    assert table_world.row("kp_2") is not None
    assert outbox.pending(10) == ["org_default|kp_1"]


def test_racing_writers_of_one_target_leave_the_newest_change(table_world: Fed) -> None:
    outbox, key = table_world.sync.outbox, "org_default|kp_1"
    noted: dict[int, TableRow | None] = {}  # generation -> the row noted (None: delete)

    def writer(n: int) -> None:
        for i in range(15):
            row = _row([f"role_{n}_{i}"], float(i))
            noted[outbox.note(key, row if i % 4 else None, time.time())] = row if i % 4 else None
            table_world.sync.sync(key)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    table_world.sync.drain()
    newest = noted[max(noted)]  # each writer ends with a row (i = 14), whichever came last
    found = table_world.row()
    assert outbox.pending(10) == []
    assert newest is not None
    assert found is not None
    assert (found["roles"], found["generation"]) == (newest.roles, max(noted))


class Unreachable(InMemoryEntitlementsTable):
    """The fake table with Postgres gone: every write fails as the adapter reports it."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts = 0

    def apply(self, change: Change, still_newest: Callable[[], bool]) -> bool:
        self.attempts += 1
        raise RetryableError("postgres unavailable while writing: no connection", reason=UNAVAILABLE)


def test_a_failed_write_never_fails_the_pass_and_pauses_in_pass_writes(redis_url: str) -> None:
    world, table, now = build_world(redis_url), Unreachable(), [1000.0]
    feed = TableFeed(RedisSnapshotStore(world.redis), TableSync(TableOutbox(world.redis), table), clock=lambda: now[0])
    world.deps = dataclasses.replace(world.deps, converger=dataclasses.replace(world.deps.converger, snapshots=feed))
    world.kinde.add_user("kp_1", "customer_1")
    world.kinde.set_plan("customer_1", "plan_subscriber")
    assert handle_event(world.deps, user_created("ev_u", "kp_1"), OLD) == "converged"
    assert world.kinde.role_keys("org_default", "kp_1") == ["role_subscriber"]
    assert table.attempts == 1
    world.kinde.set_plan("customer_1", "plan_client")
    assert handle_event(world.deps, billing("ev_1", "customer_1"), OLD) == "converged"
    assert table.attempts == 1  # within QUIET_S of the failure: left to the drain
    now[0] += QUIET_S
    world.kinde.set_plan("customer_1", None)
    assert handle_event(world.deps, billing("ev_2", "customer_1"), OLD) == "converged"
    assert table.attempts == 2
    assert feed.outbox.pending(10) == ["org_default|kp_1"]
    newest = feed.outbox.newest("org_default|kp_1")
    assert newest is not None
    assert newest.row is None  # what waits is the newest change: cancelled, delete the row


def test_postgres_down_then_up_loses_no_update(redis_url: str) -> None:
    with EmbeddedPostgres() as server:
        with psycopg.connect(server.url, autocommit=True) as conn:
            migrate(conn)
        table_world = fed(build_world(redis_url), server.url)
        world = table_world.world
        world.kinde.add_user("kp_1", "customer_1")
        world.kinde.add_user("kp_2", "customer_2")
        world.kinde.set_plan("customer_1", "plan_subscriber")
        world.kinde.set_plan("customer_2", "plan_client")
        handle_event(world.deps, user_created("ev_u1", "kp_1"), OLD)
        handle_event(world.deps, user_created("ev_u2", "kp_2"), OLD)
        assert table_world.row("kp_2") is not None

        server.stop()
        world.kinde.set_plan("customer_1", "plan_client")  # an upgrade while Postgres is down
        assert handle_event(world.deps, billing("ev_1", "customer_1"), OLD) == "converged"
        world.kinde.set_plan("customer_2", None)  # and a cancellation
        assert handle_event(world.deps, billing("ev_2", "customer_2"), OLD) == "converged"
        assert world.kinde.role_keys("org_default", "kp_1") == ["role_client"]  # roles written regardless
        assert world.kinde.role_keys("org_default", "kp_2") == []
        outbox = TableOutbox(world.redis)
        assert outbox.lag(time.time()).pending == 2

        server.start()
        deadline, failing = time.monotonic() + 60, True
        while outbox.lag(time.time()).pending and time.monotonic() < deadline:
            failing = tick(table_world.sync, failing)  # the drain loop's step (worker/outputs/table_sync.py run)
            time.sleep(0.2)
        assert outbox.lag(time.time()) == Lag(0, None)
        upgraded = table_world.row("kp_1")
        assert upgraded is not None
        assert upgraded["roles"] == ["role_client"]
        assert table_world.row("kp_2") is None
        table_world.table.close()


def test_without_a_postgres_url_the_worker_keeps_plain_snapshots(redis_url: str) -> None:
    world = build_world(redis_url)
    store = snapshot_store(Settings(redis_url=Secret(redis_url)), world.redis)
    assert isinstance(store, RedisSnapshotStore)  # no table, no pool: nothing connects to Postgres


def test_the_drain_process_runs_only_with_a_postgres_url() -> None:
    base = Settings(redis_url=Secret("redis://x"))
    assert "worker.outputs.table_sync:run" not in dramatiq_argv(base, processes=1, threads=1)
    fed_settings = dataclasses.replace(base, postgres_url=Secret("postgresql://db/x"))
    assert "worker.outputs.table_sync:run" in dramatiq_argv(fed_settings, processes=1, threads=1)


def test_a_pending_mark_without_a_change_is_dropped_but_never_one_with_a_change(table_world: Fed) -> None:
    outbox = table_world.sync.outbox
    outbox.note("org_default|kp_1", None, time.time())
    outbox.forget("org_default|kp_1")  # a change waits: the mark stays
    assert outbox.pending(10) == ["org_default|kp_1"]
    table_world.world.redis.hdel(keys.TABLE_CHANGES, "org_default|kp_1")  # as if cleared by another writer
    assert table_world.sync.sync("org_default|kp_1")
    assert outbox.pending(10) == []
