"""A live worker gets back what its own ack set holds but it does not, whenever a consumer restarts.

Real Valkey and a real Dramatiq `Worker` on our `build_broker`; no recovery sweep runs here, so with
Dramatiq's stock consumer every stranded message below would wait for the worker process to exit.
A fetch whose reply is lost is reproduced exactly: the fetch script runs in Redis under the
worker's broker id and its reply is dropped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import dramatiq
import pytest
import redis
from dramatiq import Worker
from dramatiq.brokers.redis import RedisBroker

from common import keys
from common.infra.deadletters import UNDECODABLE, RedisDeadLetterStore
from common.infra.embedded_redis import EmbeddedRedis
from common.settings import Settings
from launch.processes import free_port, wait_until
from worker.entrypoints import bootstrap
from worker.runtime.broker import build_broker

pytestmark = pytest.mark.e2e
QUEUE = "reclaim_test"


@pytest.fixture
def broker(redis_url: str) -> Iterator[RedisBroker]:
    broker = build_broker(Settings.from_env({"REDIS_URL": redis_url}))
    yield broker
    broker.close()


@pytest.fixture
def dead_letters(redis_url: str) -> Iterator[RedisDeadLetterStore]:
    store = RedisDeadLetterStore(redis.Redis.from_url(redis_url, decode_responses=True))
    bootstrap.use_deps(None, store)
    yield store
    bootstrap.use_deps(None, None)


@pytest.fixture
def worker(broker: RedisBroker) -> Iterator[Worker]:
    worker = Worker(broker, worker_threads=2, worker_timeout=100)
    yield worker
    worker.stop(timeout=5000)


def _ack_set(broker: RedisBroker, queue: str = QUEUE) -> set[bytes]:
    return set(broker.client.smembers(keys.ack_set(broker.broker_id, queue)))


def _pause_consumers(worker: Worker) -> None:
    """Only the consumer threads: `Worker.pause` would also wait for the worker threads' messages."""
    for thread in worker.consumers.values():
        thread.pause()
    wait_until(lambda: all(t.paused_event.is_set() for t in worker.consumers.values()), timeout=5, what="paused")


def _resume_consumers(worker: Worker) -> None:
    """Each consumer thread leaves its paused loop by starting a new consumer, as after a connection error."""
    for thread in worker.consumers.values():
        thread.resume()


def test_a_fetch_whose_reply_was_lost_runs_when_the_consumer_restarts(broker: RedisBroker, worker: Worker) -> None:
    ran: list[str] = []
    actor = dramatiq.actor(ran.append, broker=broker, actor_name="record", queue_name=QUEUE)
    worker.start()
    _pause_consumers(worker)
    for name in ("a", "b", "c"):
        actor.send(name)
    broker.do_fetch(QUEUE, 10)  # type: ignore[attr-defined]  # ran in Redis; the reply "died"
    assert len(_ack_set(broker)) == 3
    assert broker.client.llen(keys.queue_list(QUEUE)) == 0

    _resume_consumers(worker)
    wait_until(lambda: sorted(ran) == ["a", "b", "c"], timeout=10, what="the stranded messages")
    wait_until(lambda: not _ack_set(broker), timeout=5, what="their acks")


def test_a_message_a_worker_thread_still_holds_is_not_requeued(broker: RedisBroker, worker: Worker) -> None:
    started, release, runs = threading.Event(), threading.Event(), []

    def record(name: str) -> None:
        runs.append(name)
        if name == "held":
            started.set()
            release.wait(10)

    actor = dramatiq.actor(record, broker=broker, actor_name="record_slowly", queue_name=QUEUE)
    worker.start()
    actor.send("held")
    assert started.wait(10)
    _pause_consumers(worker)
    _resume_consumers(worker)  # a restart while the message is in a worker thread's hands
    actor.send("probe")  # handled only once the consumer has restarted
    wait_until(lambda: "probe" in runs, timeout=10, what="the restarted consumer")
    assert broker.client.llen(keys.queue_list(QUEUE)) == 0  # "held" was not pushed back for another worker
    release.set()
    wait_until(lambda: not _ack_set(broker), timeout=5, what="its ack")
    assert runs == ["held", "probe"]


def test_an_ack_that_timed_out_is_retried_not_stranded(
    broker: RedisBroker, worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """redis-py raises TimeoutError, not ConnectionError, when a reconnect times out (a partition
    that drops packets): the ack never reached Redis. Dramatiq's consumer retries only a
    ConnectionError; this one must be retried too, or the id stays in the ack set, counted as
    held, and no restart ever returns it (docs/stack-notes.md, redis-py defaults)."""
    monkeypatch.setattr("dramatiq.worker.POST_PROCESS_MESSAGE_RETRY_DELAY_SECS", 0.1)
    ran: list[str] = []
    failures = [redis.TimeoutError("Timeout connecting to server")]
    real_ack = broker.do_ack  # type: ignore[attr-defined]

    def flaky_ack(queue_name: str, *message_ids: str) -> object:
        if failures:
            raise failures.pop()
        return real_ack(queue_name, *message_ids)

    broker.do_ack = flaky_ack  # type: ignore[attr-defined]
    actor = dramatiq.actor(ran.append, broker=broker, actor_name="record_ack", queue_name=QUEUE)
    worker.start()
    actor.send("once")
    wait_until(lambda: ran == ["once"] and not failures, timeout=10, what="the run and its failed ack")
    wait_until(lambda: not _ack_set(broker), timeout=5, what="the retried ack")
    assert ran == ["once"]


def test_a_message_that_cannot_be_decoded_is_dead_lettered_not_requeued_forever(
    broker: RedisBroker, worker: Worker, dead_letters: RedisDeadLetterStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dramatiq's consumer restarts on a body it cannot decode; requeueing that id on the restart
    would bring it straight back, restarting the consumer every few seconds for good. It goes to our
    dead-letter store (reason `undecodable`, with its body), not to Dramatiq's 7-day `.XQ`."""
    monkeypatch.setattr("dramatiq.worker.CONSUMER_RESTART_DELAY_SECS", 0.2)
    ran: list[str] = []
    actor = dramatiq.actor(ran.append, broker=broker, actor_name="record_poison", queue_name=QUEUE)
    broker.client.hset(keys.queue_messages(QUEUE), "poison", b"{not a message")
    broker.client.rpush(keys.queue_list(QUEUE), "poison")
    worker.start()
    wait_until(lambda: dead_letters.list(reason=UNDECODABLE), timeout=10, what="the undecodable dead letter")
    actor.send("after")
    wait_until(lambda: ran == ["after"], timeout=10, what="the next message")
    wait_until(lambda: not _ack_set(broker), timeout=5, what="an empty ack set")
    assert broker.client.llen(keys.queue_list(QUEUE)) == 0
    assert broker.client.zscore(f"{keys.queue_list(QUEUE)}.XQ", "poison") is None
    assert broker.client.hget(keys.queue_messages(QUEUE), "poison") is None
    (record,) = dead_letters.list(reason=UNDECODABLE)
    assert record.claims["body"] == "{not a message"
    assert (record.claims["queue"], record.claims["redis_message_id"]) == (QUEUE, "poison")


def test_an_ack_refused_by_a_server_that_became_a_replica_is_retried_until_a_primary_takes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A failover turns the worker's server into a replica: writes answer READONLY, a ResponseError that
    Dramatiq would log and give up on, stranding the id in a live worker's ack set. It is retried instead
    (on a fresh connection) until a primary answers. Own server: it is demoted and promoted here."""
    monkeypatch.setattr("dramatiq.worker.POST_PROCESS_MESSAGE_RETRY_DELAY_SECS", 0.1)
    with EmbeddedRedis(port=free_port()) as server:
        broker = build_broker(Settings.from_env({"REDIS_URL": f"{server.url}/0"}))
        admin = redis.Redis.from_url(f"{server.url}/0")
        started, release, ran = threading.Event(), threading.Event(), []

        def record(name: str) -> None:
            ran.append(name)
            started.set()
            release.wait(10)

        actor = dramatiq.actor(record, broker=broker, actor_name="record_failover", queue_name=QUEUE)
        worker = Worker(broker, worker_threads=1, worker_timeout=100)
        worker.start()
        try:
            actor.send("once")
            assert started.wait(10)
            admin.execute_command("REPLICAOF", "127.0.0.1", str(free_port()))  # no such primary: stays a replica
            release.set()
            time.sleep(1.0)  # acks are refused READONLY meanwhile
            assert _ack_set(broker)
            admin.execute_command("REPLICAOF", "NO", "ONE")  # promoted: the retried ack goes through
            wait_until(lambda: not _ack_set(broker), timeout=10, what="the retried ack")
        finally:
            admin.execute_command("REPLICAOF", "NO", "ONE")
            worker.stop(timeout=5000)
            broker.close()
            admin.close()
        assert ran == ["once"]
