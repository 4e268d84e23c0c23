"""One retry budget, end to end: what each kind of failure costs before it lands in the dead-letter store.

Real Valkey and a real Dramatiq `Worker` on our `build_broker` (its retry middleware, its dead-letter
middleware, the real Redis dead-letter store). Back-offs are shrunk through the actors' own
`min_backoff`/`max_backoff` options; the decisions are the production ones.
"""

from __future__ import annotations

from collections.abc import Iterator

import dramatiq
import pytest
import redis
from dramatiq import Worker
from dramatiq.brokers.redis import RedisBroker

from common.errors import PermanentError, RetryableError
from common.infra.deadletters import DeadLetter, RedisDeadLetterStore
from common.settings import Settings
from launch.processes import wait_until
from worker.entrypoints import bootstrap
from worker.runtime.broker import build_broker
from worker.runtime.durable_retries import QuietRetryable
from worker.runtime.retry_policy import UNEXPECTED_TRIES

pytestmark = pytest.mark.e2e
QUEUE = "retry_budget_test"
FAST = {"queue_name": QUEUE, "min_backoff": 10, "max_backoff": 50}


def claims(event_id: str) -> dict[str, object]:
    return {"type": "customer.plan_changed", "event_id": event_id, "data": {"customer_id": "customer_1"}}


@pytest.fixture
def store(redis_url: str) -> Iterator[RedisDeadLetterStore]:
    store = RedisDeadLetterStore(redis.Redis.from_url(redis_url, decode_responses=True))
    bootstrap.use_deps(None, store)
    yield store
    bootstrap.use_deps(None, None)


@pytest.fixture
def broker(redis_url: str, store: RedisDeadLetterStore) -> Iterator[RedisBroker]:
    broker = build_broker(Settings.from_env({"REDIS_URL": redis_url}))
    yield broker
    broker.close()


@pytest.fixture
def worker(broker: RedisBroker) -> Iterator[Worker]:
    worker = Worker(broker, worker_threads=2, worker_timeout=100)
    yield worker
    worker.stop(timeout=5000)


def _dead_letter(store: RedisDeadLetterStore, event_id: str) -> DeadLetter:
    wait_until(lambda: store.get(event_id) is not None, timeout=30, what=f"the dead letter of {event_id}")
    record = store.get(event_id)
    assert record is not None
    return record


def test_a_programming_error_is_dead_lettered_after_a_few_tries_with_its_summary(
    broker: RedisBroker, worker: Worker, store: RedisDeadLetterStore
) -> None:
    tries: list[str] = []

    def buggy(event: dict[str, object]) -> None:
        tries.append(str(event["event_id"]))
        _ = {"pro": 1}[str(event["type"])]  # a KeyError, as a handler bug would raise

    actor = dramatiq.actor(buggy, broker=broker, actor_name="buggy", max_retries=40, **FAST)
    worker.start()
    actor.send(claims("ev_bug"))
    record = _dead_letter(store, "ev_bug")
    assert (record.reason, record.attempts, len(tries)) == ("unexpected_error", UNEXPECTED_TRIES, UNEXPECTED_TRIES)
    assert record.last_error.startswith("KeyError: 'customer.plan_changed' at runtime/test_retry_budget.py:")
    assert record.last_error.endswith(" in buggy")


def test_an_outage_keeps_retrying_on_its_long_budget_and_then_succeeds(
    broker: RedisBroker, worker: Worker, store: RedisDeadLetterStore
) -> None:
    outage_failures = 3 * UNEXPECTED_TRIES
    tries: list[str] = []

    def during_outage(event: dict[str, object]) -> None:
        tries.append(str(event["event_id"]))
        if len(tries) <= outage_failures:
            raise RetryableError("Kinde answered 503 on GET /roles", reason="kinde_503")

    actor = dramatiq.actor(during_outage, broker=broker, actor_name="during_outage", max_retries=40, **FAST)
    worker.start()
    actor.send(claims("ev_outage"))
    wait_until(lambda: len(tries) > outage_failures, timeout=30, what="the attempt after the outage")
    worker.join()
    assert len(tries) == outage_failures + 1
    assert store.get("ev_outage") is None


def test_an_outage_past_its_budget_is_retries_exhausted(
    broker: RedisBroker, worker: Worker, store: RedisDeadLetterStore
) -> None:
    def down(event: dict[str, object]) -> None:
        try:
            raise RetryableError("cannot reach Kinde", reason="kinde_unreachable")
        except RetryableError as exc:  # as worker/runtime/actors.py's `attempt` hands it on
            raise QuietRetryable(exc) from exc

    actor = dramatiq.actor(down, broker=broker, actor_name="down", max_retries=4, **FAST)
    worker.start()
    actor.send(claims("ev_down"))
    record = _dead_letter(store, "ev_down")
    assert (record.reason, record.attempts) == ("retries_exhausted", 5)
    assert record.last_error == "gave up after 5 failures; last: RetryableError: cannot reach Kinde"


def test_an_actor_names_the_reason_its_spent_budget_is_dead_lettered_as(
    broker: RedisBroker, worker: Worker, store: RedisDeadLetterStore
) -> None:
    def app_down(event: dict[str, object]) -> None:
        try:
            raise RetryableError("the app's webhook endpoint answered 503", reason="notify_503")
        except RetryableError as exc:
            raise QuietRetryable(exc) from exc

    actor = dramatiq.actor(app_down, broker=broker, actor_name="app_down", max_retries=1, exhausted_as="notify_failed",
                           **FAST)  # fmt: skip
    worker.start()
    actor.send(claims("ev_notify"))
    record = _dead_letter(store, "ev_notify")
    assert (record.reason, record.attempts) == ("notify_failed", 2)


def test_a_permanent_error_is_dead_lettered_at_once(
    broker: RedisBroker, worker: Worker, store: RedisDeadLetterStore
) -> None:
    tries: list[str] = []

    def refused(event: dict[str, object]) -> None:
        tries.append(str(event["event_id"]))
        raise PermanentError("Kinde answered 400 ROLE_NOT_FOUND", reason="kinde_ROLE_NOT_FOUND")

    actor = dramatiq.actor(refused, broker=broker, actor_name="refused", max_retries=40, **FAST)
    worker.start()
    actor.send(claims("ev_refused"))
    record = _dead_letter(store, "ev_refused")
    worker.join()
    assert (record.reason, record.attempts, tries) == ("kinde_ROLE_NOT_FOUND", 1, ["ev_refused"])


def test_a_redis_error_that_escaped_translation_is_still_an_outage(
    broker: RedisBroker, worker: Worker, store: RedisDeadLetterStore
) -> None:
    tries: list[str] = []

    def untranslated(event: dict[str, object]) -> None:
        tries.append(str(event["event_id"]))
        if len(tries) <= 2 * UNEXPECTED_TRIES:
            raise redis.ConnectionError("Connection refused")

    actor = dramatiq.actor(untranslated, broker=broker, actor_name="untranslated", max_retries=40, **FAST)
    worker.start()
    actor.send(claims("ev_raw_redis"))
    wait_until(lambda: len(tries) > 2 * UNEXPECTED_TRIES, timeout=30, what="the attempt after the outage")
    assert store.get("ev_raw_redis") is None


def test_no_actor_can_bring_a_second_retry_predicate(broker: RedisBroker) -> None:
    with pytest.raises(ValueError, match="retry_when"):
        dramatiq.actor(print, broker=broker, actor_name="own_rules", queue_name=QUEUE, retry_when=lambda n, e: True)
