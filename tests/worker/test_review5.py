"""The fifth review: sequences that try to break the bulk queue (#14 item 3) and the plan-selection guard (#13).

Each test names one problem and fails without its fix; a problem left open is a strict xfail saying why.
Real Valkey throughout, real uvicorn for the API, an in-process Dramatiq `Worker` on our `build_broker`.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import httpx
import pytest
import redis
import yaml
from dramatiq import Worker
from dramatiq.brokers.redis import RedisBroker
from prometheus_client import REGISTRY

from api.app import create_app
from common import keys
from common.guard.members import MemberCount, RedisMemberCache
from common.infra.deadletters import FORBIDDEN, DeadLetter, RedisDeadLetterStore
from common.messages import BULK_PRIORITY, BULK_QUEUE, CONVERGE_QUEUE, EVENT_QUEUES, EVENTS_QUEUE, event_message
from common.settings import Settings
from ingest.enqueue import RedisEventQueue
from launch.processes import wait_until
from tests.ingest.servers import serving
from tests.ingest.test_enqueue import on, planned
from tests.ingest.tokens import claims
from worker.entrypoints import bootstrap
from worker.runtime.broker import build_broker
from worker.runtime.middleware import Observe
from worker.sweeps.scope_probe import build_prober

LOCAL = {"ROLESYNC_INSECURE_LOCAL": "1"}  # KINDE_DOMAIN below is http on loopback

pytestmark = pytest.mark.integration
SECRET = "workflow-Xq7vR2mK9pLs4Tz8Wn3cYb6H"
APP_KEY = "app-Ud6sY1gT8rKq3Zw5Mx9Ce2La"
ALERTS = Path(__file__).resolve().parents[2] / "docs" / "alerts.yml"


@pytest.fixture
def client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url, decode_responses=True)


@pytest.fixture
def broker(redis_url: str, client: redis.Redis) -> Iterator[RedisBroker]:
    bootstrap.use_deps(None, RedisDeadLetterStore(client))
    broker = build_broker(Settings.from_env({"REDIS_URL": redis_url}))
    yield broker
    broker.close()
    bootstrap.use_deps(None, None)


# --- 1. a nested JSON body is a 500 at the guard's endpoint -------------------------------------------------


def test_a_deeply_nested_json_body_is_a_400_not_a_500(redis_url: str) -> None:
    """json.loads raises RecursionError (no ValueError) on a body nested deeper than the interpreter's
    limit; 20,000 levels fit in the endpoint's 64 KiB cap. The ingest already catches it (ingest/verify.py)."""
    env = {"REDIS_URL": redis_url, "ROLESYNC_WORKFLOW_SECRET": SECRET}
    app = create_app(Settings.from_env(env))
    nested = b"[" * 20_000 + b"]" * 20_000
    with serving(app) as url, httpx.Client(base_url=url, timeout=10.0) as api:
        answer = api.post("/v1/plan-selection", content=nested, headers={"x-rolesync-workflow-secret": SECRET})
    assert (answer.status_code, answer.json()["error"]["code"]) == (400, "bad_request")


# --- 2. the scope probe replays dead letters onto the fresh queue -------------------------------------------


def test_the_scope_probes_replays_queue_behind_fresh_events(redis_url: str, client: redis.Redis) -> None:
    """Every event that failed for a missing scope is dead-lettered `forbidden` (all of them, for as long as
    the scope was missing); once granted, the probe replays them all at once. `rolesync dlq replay` sends
    replays to the bulk queue; the probe's replays went to the fresh one, ahead of every sign-up."""
    now = time.time()
    claims = {"type": "customer.plan_changed", "event_id": "ev_forbidden", "data": {"customer_id": "customer_f"}}
    record = DeadLetter("ev_forbidden", claims, FORBIDDEN, "forbidden", 1, now, now, "customer_f",
                        "customer.plan_changed")  # fmt: skip
    RedisDeadLetterStore(client).put(record)
    prober = build_prober(Settings.from_env({"REDIS_URL": redis_url, "KINDE_DOMAIN": "http://127.0.0.1:9", **LOCAL}))
    assert "re-enqueued" in prober.replayer.replay(record)
    assert (client.llen(keys.queue_list(EVENTS_QUEUE)), client.llen(keys.queue_list(BULK_QUEUE))) == (0, 1)


# --- 3. two bulk queues together hold every worker thread ---------------------------------------------------


def test_bulk_work_from_two_bulk_queues_leaves_a_thread_for_a_fresh_event(broker: RedisBroker) -> None:
    started: list[str] = []
    release = threading.Event()

    def bulk_pass(name: str) -> None:
        started.append(name)
        release.wait(30)

    def fresh_event() -> None:
        started.append("fresh")

    for queue in (BULK_QUEUE, CONVERGE_QUEUE):  # a webhook burst and a reconcile sweep at once
        sweep = dramatiq.actor(bulk_pass, broker=broker, actor_name=f"pass_{queue}", queue_name=queue,
                               priority=BULK_PRIORITY, max_retries=0)  # fmt: skip
        sweep.send(queue)
    fresh = dramatiq.actor(fresh_event, broker=broker, actor_name="fresh_event", queue_name=EVENTS_QUEUE, max_retries=0)
    worker = Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        wait_until(lambda: started, timeout=20, what="a bulk pass started")
        with contextlib.suppress(TimeoutError):  # with the budget shared, the second never starts
            wait_until(lambda: len(started) == 2, timeout=3, what="both bulk passes started")
        fresh.send()  # a sign-up arriving while they run
        wait_until(lambda: "fresh" in started, timeout=10, what="the fresh event ran beside the bulk passes")
    finally:
        release.set()
        worker.stop(timeout=10_000)


# --- 4. a member listing read before a user joined erases what the user's event recorded ----------------------


def test_a_listing_read_before_a_user_joined_does_not_erase_the_join(client: redis.Redis) -> None:
    cache = RedisMemberCache(client)
    listing_read_at = time.time()  # the refresh actor reads the listing: kp_a only
    cache.user_orgs("kp_new", ["org_x"])  # then kp_new joins; its user.updated is handled first
    cache.replace("org_x", ["kp_a"], read_at=listing_read_at)  # the older listing lands last
    found = cache.count("org_x")
    assert found is not None
    assert found.count == 2  # kp_a and kp_new: the guard counts one member short


def test_a_listing_read_before_a_user_left_does_not_bring_it_back_and_a_newer_one_settles(client: redis.Redis) -> None:
    cache = RedisMemberCache(client)
    cache.replace("org_x", ["kp_a", "kp_gone"], read_at=time.time())
    listing_read_at = time.time()  # a refresh reads the listing while kp_gone is still a member
    cache.user_orgs("kp_gone", [])  # kp_gone leaves; its user.updated is handled first
    cache.replace("org_x", ["kp_a", "kp_gone"], read_at=listing_read_at)
    assert cache.count("org_x") == MemberCount(1, pytest.approx(listing_read_at))  # type: ignore[arg-type]
    cache.replace("org_x", ["kp_a"], read_at=time.time())  # a listing read after the leave holds it
    assert client.hlen(keys.org_members_seen("org_x")) == 0


# --- 5. a burst of bulk-routed webhooks pages on-call for queue lag ------------------------------------------


def test_the_paging_queue_lag_is_the_fresh_queues_alone() -> None:
    """Bulk-routed webhooks wait behind fresh ones by design, minutes in a migration's burst; in one
    unlabelled histogram they made the p95 that pages (docs/alerts.yml) and hid the fresh queue's own."""
    rule = next(r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]
                if r["alert"] == "RolesyncQueueLag")  # fmt: skip
    assert f'rolesync_queue_lag_seconds_bucket{{queue="{EVENTS_QUEUE}"}}' in rule["expr"]

    def observed(queue: str) -> float:
        return REGISTRY.get_sample_value("rolesync_queue_lag_seconds_count", {"queue": queue}) or 0.0

    before = {q: observed(q) for q in EVENT_QUEUES}
    received = {"received_at": time.time() - 600, "webhook_id": None}
    for bulk in (True, True, False):
        Observe().before_process_message(None, event_message({"type": "customer.plan_changed"}, None, 0.0, bulk=bulk)
                                         .copy(args=({"type": "customer.plan_changed"}, received)))  # fmt: skip
    assert {q: observed(q) - before[q] for q in before} == {EVENTS_QUEUE: 1.0, BULK_QUEUE: 2.0}


# --- 6. a 400-digit number in a usage report is a 500 -------------------------------------------------------


@pytest.mark.parametrize("field", ["value", "at"])
def test_a_usage_report_with_a_number_too_large_for_a_float_is_a_400(redis_url: str, field: str) -> None:
    """JSON integers are unbounded: math.isfinite(10**400) raises OverflowError, not a verdict."""
    env = {"REDIS_URL": redis_url, "ROLESYNC_API_KEYS": f"app:{APP_KEY}:users+usage:write"}
    body = {"value": 1, field: 10**400}
    with serving(create_app(Settings.from_env(env))) as url, httpx.Client(base_url=url, timeout=10.0) as api:
        headers = {"Authorization": f"Bearer {APP_KEY}", "Content-Type": "application/json"}
        answer = api.put("/v1/customers/customer_1/usage/projects", content=json.dumps(body), headers=headers)
    assert (answer.status_code, answer.json()["error"]["code"]) == (400, "bad_request")


# --- what held: a redelivery is deduped and counted once whichever queue it would go to ------------------------


def test_a_redelivery_during_a_burst_is_deduped_and_keeps_its_generation(redis_url: str, client: redis.Redis) -> None:
    """Kinde redelivers an event first queued fresh; by then a burst routes its customer's events to bulk.
    The seen key is set before the queue is chosen, so the redelivery queues nothing and counts nothing."""
    client.set(keys.customer_grants("customer_0195ac80"), planned("customer_0195ac80"))  # it has plans
    first = claims()

    async def deliver(queue: RedisEventQueue) -> list[bool]:
        return [await queue.enqueue_once(e, None, 1.0) for e in (first, claims(), claims(), first)]

    assert on(redis_url, deliver, burst_events=1) == [True, True, True, False]
    assert (client.llen(keys.queue_list(EVENTS_QUEUE)), client.llen(keys.queue_list(BULK_QUEUE))) == (1, 2)
    assert client.get(keys.event_generation(first["event_id"])) == "customer_0195ac80|1"
    assert client.get(keys.customer_generation("customer_0195ac80")) == "3"
