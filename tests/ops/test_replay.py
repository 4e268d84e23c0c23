"""Replaying a dead letter removes the record it replayed, never a failure recorded after it."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from common.infra.deadletters import DeadLetter, DeadLetterStore, RedisDeadLetterStore
from ops.dlq import Replayer
from tests.worker.fakes import FakeDeadLetterStore


@pytest.fixture(params=["fake", pytest.param("redis", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest) -> DeadLetterStore:
    if request.param == "fake":
        return FakeDeadLetterStore()
    return RedisDeadLetterStore(redis.Redis.from_url(request.getfixturevalue("redis_url"), decode_responses=True))


def failure(reason: str, at: float, event_type: str = "customer.plan_changed") -> DeadLetter:
    claims = {"type": event_type, "event_id": "ev_1", "data": {"customer_id": "customer_1"}}
    return DeadLetter("ev_1", claims, reason, "boom", 1, at, at, "customer_1", event_type)


def failing_again(store: DeadLetterStore) -> Any:
    """An enqueue whose worker fails the replayed event at once, before the replayer gets to remove."""

    def enqueue(*_: Any) -> None:
        store.put(failure("kinde_CONFLICT", at=200.0))

    return enqueue


def test_a_replayed_event_that_fails_again_at_once_keeps_its_new_record(store: DeadLetterStore) -> None:
    store.put(failure("retries_exhausted", at=100.0))
    (replayed,) = store.list()
    sentence = Replayer(store, failing_again(store), lambda c, r: None).replay(replayed)
    kept = store.get("ev_1")
    assert kept is not None
    assert (kept.reason, kept.last_failed_at) == ("kinde_CONFLICT", 200.0)
    assert [r.id for r in store.of_customer("customer_1")] == ["ev_1"]
    assert [r.id for r in store.list()] == ["ev_1"]
    assert "failed again" in sentence


def test_a_replayed_converge_pass_that_fails_again_keeps_its_new_record(store: DeadLetterStore) -> None:
    store.put(failure("retries_exhausted", at=100.0, event_type="converge_customer"))
    (replayed,) = store.list()
    refail = failing_again(store)
    Replayer(store, lambda *_: None, lambda customer, reason: refail()).replay(replayed)
    kept = store.get("ev_1")
    assert kept is not None
    assert kept.reason == "kinde_CONFLICT"


def test_a_replay_nobody_failed_again_removes_the_record_everywhere(store: DeadLetterStore) -> None:
    store.put(failure("retries_exhausted", at=100.0))
    (replayed,) = store.list()
    sent: list[Any] = []
    sentence = Replayer(store, lambda *args: sent.append(args), lambda c, r: None).replay(replayed)
    assert store.get("ev_1") is None
    assert store.list() == []
    assert store.of_customer("customer_1") == []
    assert len(sent) == 1
    assert sentence == "ev_1: customer.plan_changed event re-enqueued"


def test_an_undecodable_record_is_not_replayed_and_stays(store: DeadLetterStore) -> None:
    store.put(DeadLetter("message_r1", {"body": "{not"}, "undecodable", "cannot decode", 1, 1.0, 1.0, None, None))
    (record,) = store.list()
    sent: list[Any] = []
    sentence = Replayer(store, lambda *args: sent.append(args), lambda c, r: sent.append(c)).replay(record)
    assert (sent, store.get("message_r1") is not None) == ([], True)
    assert "not replayed" in sentence


def test_a_rebuild_chunk_recorded_before_the_fix_is_sent_to_rebuild_index_not_as_a_webhook(
    store: DeadLetterStore,
) -> None:
    claims = {"type": "rebuild_index", "customer_id": "holder_1", "args": ["holder_1"]}  # the old, mis-filed shape
    store.put(DeadLetter("message_m1", claims, "kinde_forbidden", "403", 1, 1.0, 1.0, "holder_1", "rebuild_index"))
    (record,) = store.list()
    events: list[Any] = []
    messages: list[Any] = []
    sentence = Replayer(store, lambda *a: events.append(a), lambda c, r: None, send=messages.append).replay(record)
    assert events == []
    assert [(m.queue_name, m.actor_name, m.args) for m in messages] == [
        ("rolesync-rebuild", "rebuild_index", ("holder_1",))
    ]
    assert sentence == "message_m1: rebuild_index message re-enqueued"
    assert store.get("message_m1") is None


def test_a_replayer_that_cannot_send_an_actors_own_message_keeps_the_record(store: DeadLetterStore) -> None:
    claims = {"type": "rebuild_index", "rebuild": "holder_1", "args": ["holder_1"]}
    store.put(DeadLetter("message_m1", claims, "kinde_forbidden", "403", 1, 1.0, 1.0, None, "rebuild_index"))
    (record,) = store.list()
    events: list[Any] = []
    sentence = Replayer(store, lambda *a: events.append(a), lambda c, r: None).replay(record)
    assert (events, store.get("message_m1") is not None) == ([], True)
    assert "not replayed here" in sentence


def test_a_purge_spares_a_failure_recorded_after_the_records_were_chosen(store: DeadLetterStore) -> None:
    from ops.dlq import purge

    store.put(failure("retries_exhausted", at=100.0))
    chosen = store.list()  # on-call lists, then confirms
    store.put(failure("kinde_CONFLICT", at=200.0))  # the event failed again meanwhile (a replay of it, say)
    assert purge(store, chosen) == 0
    kept = store.get("ev_1")
    assert kept is not None  # was: deleted by id, the newer failure with it
    assert kept.reason == "kinde_CONFLICT"
    assert purge(store, store.list()) == 1
    assert store.list() == []


def test_a_replayed_event_that_fails_again_later_keeps_its_first_failure_and_counts_on(store: DeadLetterStore) -> None:
    store.put(failure("retries_exhausted", at=100.0))
    (replayed,) = store.list()
    Replayer(store, lambda *_: None, lambda c, r: None).replay(replayed)
    assert store.list() == []  # replayed: gone from the list until it fails again
    store.put(failure("kinde_CONFLICT", at=200.0))  # the worker fails the replayed event, after the removal
    again = store.get("ev_1")
    assert again is not None
    assert (again.attempts, again.first_failed_at, again.last_failed_at) == (2, 100.0, 200.0)


def test_a_replay_that_fails_before_the_removal_counts_both_failures(store: DeadLetterStore) -> None:
    store.put(failure("retries_exhausted", at=100.0))
    (replayed,) = store.list()
    Replayer(store, failing_again(store), lambda c, r: None).replay(replayed)
    kept = store.get("ev_1")
    assert kept is not None
    assert (kept.attempts, kept.first_failed_at) == (2, 100.0)


def test_a_purged_record_is_forgotten_whole(store: DeadLetterStore) -> None:
    store.put(failure("retries_exhausted", at=100.0))
    (chosen,) = store.list()
    assert store.remove_if_current(chosen) is True  # `dlq purge`
    store.put(failure("kinde_CONFLICT", at=200.0))
    fresh = store.get("ev_1")
    assert fresh is not None
    assert (fresh.attempts, fresh.first_failed_at) == (1, 200.0)
