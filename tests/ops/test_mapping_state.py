"""What `rolesync status` says of the plans.toml mapping, and when `reconcile --apply-mapping` refuses.

Real Redis; the states are the ones worker/sweeps/mapping_change.py writes (the whole flow on real
processes is tests/ops/test_mapping_change.py).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import cast

import pytest
import redis

from common.errors import PermanentError
from common.plans.fleet_mapping import Mapping, MappingStore, SweepProgress
from common.plans.mapping import parse_plans
from ops.mapping import apply_pending, state
from worker.runtime.heartbeat import beat
from worker.sweeps.reconcile import Fleet

OLD = Mapping.of(parse_plans('[plans]\nplan_a = ["role_a"]\n'))
NEW = Mapping.of(parse_plans('[plans]\nplan_a = ["role_b"]\n'), held=True)
FRESH_S = 30.0


@pytest.fixture
def store(redis_url: str) -> MappingStore:
    return MappingStore(redis.Redis.from_url(redis_url, decode_responses=True))


@pytest.fixture
def client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url, decode_responses=True)


def test_a_held_change_then_its_sweep_then_in_step(store: MappingStore) -> None:
    assert state(store, FRESH_S).summary == "in step (none recorded yet)"
    assert store.adopt(OLD)
    assert not store.adopt(NEW)
    store.record_pending(NEW)
    held = state(store, FRESH_S)
    assert held.summary.startswith(f"mapping changed, held ({OLD.fingerprint} → {NEW.fingerprint})")
    assert any("--apply-mapping" in p for p in held.problems())

    store.record_progress(SweepProgress(NEW.fingerprint, total=8, done=2, started_at=time.time()))
    sweeping = state(store, FRESH_S)
    assert sweeping.summary.startswith("mapping changed, sweep 25 % done")
    assert sweeping.problems() == []

    store.record_applied(NEW)
    done = state(store, FRESH_S)
    assert (done.summary, done.pending, store.progress()) == (f"in step ({NEW.fingerprint})", None, None)


def test_workers_on_two_mappings_are_a_problem_and_no_sweep_applies_either(
    store: MappingStore, client: redis.Redis
) -> None:
    store.adopt(OLD)
    store.record_pending(NEW)
    now = time.time()
    beat(client, "host-a:1", now, OLD.fingerprint)
    beat(client, "host-b:2", now, NEW.fingerprint)
    beat(client, "host-c:3", now - 3600, "gone")  # a worker that died an hour ago
    found = state(store, FRESH_S)
    assert found.running == sorted([OLD.fingerprint, NEW.fingerprint])
    assert any("2 different plans.toml mappings" in p for p in found.problems())
    assert client.hget("rolesync:workers:mapping", "host-c:3") is None  # dead workers' entries are dropped
    with pytest.raises(PermanentError, match="finish \\(or roll back\\) the deploy") as refused:
        apply_pending(cast(Fleet, None), store, FRESH_S, timeout_s=1)  # refused before any sweep
    assert refused.value.reason == "mapping_mixed"


def test_apply_mapping_with_nothing_pending_says_so(store: MappingStore) -> None:
    store.adopt(OLD)
    with pytest.raises(PermanentError) as refused:
        apply_pending(cast(Fleet, None), store, FRESH_S, timeout_s=1)
    assert refused.value.reason == "nothing_to_apply"
    store.record_pending(replace(OLD, held=True))  # a rollback to the applied mapping leaves nothing to apply
    assert state(store, FRESH_S).pending is None
    with pytest.raises(PermanentError):
        apply_pending(cast(Fleet, None), store, FRESH_S, timeout_s=1)
