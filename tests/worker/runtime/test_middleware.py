"""The dead-letter and log-context middleware, driven with message stand-ins (pure logic)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
import structlog

from common.errors import PermanentError, RetryableError
from common.infra.deadletters import DeadLetter
from common.messages import REBUILD_INDEX_ACTOR
from tests.worker.fakes import FakeDeadLetterStore
from worker.runtime.durable_retries import GIVEN_UP
from worker.runtime.middleware import DeadLetterOwed, DeadLetters, Observe
from worker.runtime.undecodable import MAX_BODY_CHARS, excerpt

CLAIMS = {"type": "customer.plan_changed", "event_id": "ev_1", "data": {"customer_id": "customer_1"}}


@dataclass
class Message:
    args: tuple[Any, ...] = (CLAIMS, {"received_at": 0.0})
    options: dict[str, Any] = field(default_factory=dict)
    message_id: str = "m1"
    actor_name: str = "handle_event"
    failed: bool = False
    queue_name: str = "rolesync-events"


def test_a_failed_message_is_recorded_once_with_the_reason_the_retry_policy_gave() -> None:
    store = FakeDeadLetterStore()
    middleware = DeadLetters(lambda: store)
    middleware.after_process_message(None, Message(failed=False), exception=RuntimeError("will retry"))
    assert store.records == {}
    error = PermanentError("no scope", reason="missing_scope:read:users")
    given_up = {"failures": 2, GIVEN_UP: ["missing_scope:read:users", "PermanentError: no scope"]}
    middleware.after_process_message(None, Message(failed=True, options=given_up), exception=error)
    record = store.get("ev_1")
    assert record is not None
    assert (record.reason, record.attempts, record.customer_id) == ("missing_scope:read:users", 3, "customer_1")
    assert (record.claims, record.last_error) == (CLAIMS, "PermanentError: no scope")


def test_a_failure_no_policy_decided_is_unexpected_error_and_age_limit_is_too_old() -> None:
    store = FakeDeadLetterStore()
    middleware = DeadLetters(lambda: store)
    middleware.after_process_message(None, Message(failed=True), exception=KeyError("bug"))
    assert store.records["ev_1"].reason == "unexpected_error"
    assert store.records["ev_1"].last_error.startswith("KeyError: 'bug'")
    middleware.after_skip_message(None, Message(failed=True, args=({**CLAIMS, "event_id": "ev_old"}, {})))
    assert store.records["ev_old"].reason == "too_old"


class DownStore(FakeDeadLetterStore):
    def __init__(self) -> None:
        super().__init__()
        self.down = True

    def put(self, record: DeadLetter) -> DeadLetter:
        if self.down:
            raise RetryableError("Redis unavailable while writing a dead letter")
        return super().put(record)


def test_a_record_the_store_refuses_is_owed_by_the_nack_until_written() -> None:
    store = DownStore()
    middleware = DeadLetters(lambda: store)
    failed = Message(failed=True, options={"redis_message_id": "r1", GIVEN_UP: ["kinde_NOPE", "PermanentError: no"]})
    middleware.after_process_message(None, failed, exception=PermanentError("no", reason="kinde_NOPE"))
    for _ in range(2):
        with pytest.raises(DeadLetterOwed):  # the worker retries the nack, the message stays unacked
            middleware.before_nack(None, failed)
    assert store.records == {}
    store.down = False
    middleware.before_nack(None, failed)
    assert store.records["ev_1"].reason == "kinde_NOPE"
    middleware.before_nack(None, failed)  # paid: nothing owed any more
    assert len(store.records) == 1


def test_an_undecodable_body_is_kept_cut_as_text_or_base64_with_tokens_masked() -> None:
    token = "eyJhbGciOiJSUzI1NiJ9.eyJzY29wZSI6InJlYWQifQ.c2lnbmF0dXJl"
    text = excerpt(f'{{"token": "{token}", '.encode() + b"x" * 10_000)
    assert (text["body_encoding"], len(text["body"]) <= MAX_BODY_CHARS) == ("text", True)
    assert token not in text["body"]
    assert "<token masked>" in text["body"]
    binary = excerpt(b"\xff\xfe" * 10_000)
    assert (binary["body_encoding"], binary["body_bytes"], len(binary["body"]) <= MAX_BODY_CHARS) == (
        "base64",
        20_000,
        True,
    )


def test_log_context_is_bound_per_message_and_cleared_after() -> None:
    observe = Observe()
    structlog.contextvars.bind_contextvars(event_id="leftover_from_another_message")
    observe.before_process_message(None, Message())
    bound = structlog.contextvars.get_contextvars()
    assert (bound["event_id"], bound["customer_id"], bound["attempt"]) == ("ev_1", "customer_1", 1)
    observe.after_process_message(None, Message(), result=None)
    assert structlog.contextvars.get_contextvars() == {}


def test_a_rebuild_chunk_binds_no_customer_so_index_rebuilt_names_none() -> None:
    """The chain's holder id is no customer's: `index_rebuilt` and the chunk's other lines carry customer_id None."""
    observe = Observe()
    observe.before_process_message(None, Message(args=("holder_9f2c",), actor_name=REBUILD_INDEX_ACTOR))
    bound = structlog.contextvars.get_contextvars()
    assert bound["customer_id"] is None
    assert "holder_9f2c" not in bound.values()
    observe.after_process_message(None, Message(), result=None)
