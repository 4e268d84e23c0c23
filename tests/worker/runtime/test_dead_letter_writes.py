"""A dead letter the store cannot write yet is retried, and its message stays unacked until it is written.

Real Valkey and a real Dramatiq `Worker` on our `build_broker`. While the dead-letter store refuses
every write, a failed message must wait in its worker's ack set: neither nacked into Dramatiq's
`.XQ` (7 days, no reason) nor acked away. Once the store answers, the record is written and only
then does the message leave the ack set.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import dramatiq
import pytest
import redis
from dramatiq import Worker
from dramatiq.brokers.redis import RedisBroker

from common import keys
from common.errors import PermanentError, RetryableError
from common.infra.deadletters import UNDECODABLE, DeadLetter, RedisDeadLetterStore
from common.settings import Settings
from launch.processes import wait_until
from worker.entrypoints import bootstrap
from worker.runtime.broker import build_broker

pytestmark = pytest.mark.e2e
QUEUE = "dead_letter_writes_test"
CLAIMS = {"type": "customer.plan_changed", "event_id": "ev_dlq_write", "data": {"customer_id": "customer_1"}}


class RefusingStore(RedisDeadLetterStore):
    """The real store, refusing every put (as when its Redis is unreachable) while `refusing` is set."""

    def __init__(self, client: redis.Redis) -> None:
        super().__init__(client)
        self.refusing, self.refused = threading.Event(), 0
        self.refusing.set()

    def put(self, record: DeadLetter) -> DeadLetter:
        if self.refusing.is_set():
            self.refused += 1
            raise RetryableError("Redis unavailable while writing a dead letter")
        return super().put(record)


@pytest.fixture
def store(redis_url: str) -> Iterator[RefusingStore]:
    store = RefusingStore(redis.Redis.from_url(redis_url, decode_responses=True))
    bootstrap.use_deps(None, store)
    yield store
    bootstrap.use_deps(None, None)


@pytest.fixture
def broker(redis_url: str, store: RefusingStore, monkeypatch: pytest.MonkeyPatch) -> Iterator[RedisBroker]:
    monkeypatch.setattr("dramatiq.worker.POST_PROCESS_MESSAGE_RETRY_DELAY_SECS", 0.1)
    monkeypatch.setattr("dramatiq.worker.CONSUMER_RESTART_DELAY_SECS", 0.1)
    broker = build_broker(Settings.from_env({"REDIS_URL": redis_url}))
    yield broker
    broker.close()


def _ack_set(broker: RedisBroker, queue: str = QUEUE) -> set[bytes]:
    return set(broker.client.smembers(keys.ack_set(broker.broker_id, queue)))


def _in_xq(broker: RedisBroker, message_id: str, queue: str = QUEUE) -> bool:
    return broker.client.zscore(f"{keys.queue_list(queue)}.XQ", message_id) is not None


def _run(broker: RedisBroker) -> Worker:
    worker = Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    return worker


def test_a_failed_message_waits_unacked_until_its_dead_letter_is_written(
    broker: RedisBroker, store: RefusingStore
) -> None:
    def fail(claims: dict[str, object]) -> None:
        raise PermanentError("Kinde said no", reason="kinde_NOPE")

    actor = dramatiq.actor(fail, broker=broker, actor_name="fail_permanently", queue_name=QUEUE, max_retries=0)
    worker = _run(broker)
    try:
        message = actor.send(CLAIMS)
        wait_until(lambda: store.refused >= 3, timeout=30, what="the dead-letter write tried again and again")
        assert _ack_set(broker), "the failed message left the ack set before its dead letter was written"
        assert not _in_xq(broker, message.options["redis_message_id"])
        assert store.get("ev_dlq_write") is None
        store.refusing.clear()
        wait_until(lambda: store.get("ev_dlq_write") is not None, timeout=30, what="the dead letter")
        wait_until(lambda: not _ack_set(broker), timeout=30, what="the message to leave the ack set")
    finally:
        store.refusing.clear()
        worker.stop(timeout=5000)
    record = store.get("ev_dlq_write")
    assert record is not None
    assert (record.reason, record.claims) == ("kinde_NOPE", CLAIMS)


def test_an_undecodable_message_waits_in_the_ack_set_until_its_dead_letter_is_written(
    broker: RedisBroker, store: RefusingStore
) -> None:
    broker.client.hset(keys.queue_messages(QUEUE), "poison", b"{not a message")
    broker.client.rpush(keys.queue_list(QUEUE), "poison")
    dramatiq.actor(print, broker=broker, actor_name="never_runs", queue_name=QUEUE)
    worker = _run(broker)
    try:
        wait_until(lambda: store.refused >= 3, timeout=30, what="the dead-letter write tried again and again")
        assert _ack_set(broker) == {b"poison"}
        assert not _in_xq(broker, "poison")
        store.refusing.clear()
        wait_until(lambda: store.list(reason=UNDECODABLE), timeout=30, what="the undecodable dead letter")
        wait_until(lambda: not _ack_set(broker), timeout=30, what="an empty ack set")
    finally:
        store.refusing.clear()
        worker.stop(timeout=5000)
    assert not _in_xq(broker, "poison")
    assert broker.client.hget(keys.queue_messages(QUEUE), "poison") is None
