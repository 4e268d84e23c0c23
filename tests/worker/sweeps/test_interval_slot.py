"""One run per interval across replicas (worker/sweeps/interval_slot.py): the scheduled reconcile and the scope
probe take their slots, and loop, through the one rule (issue 25, item 6)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis
from structlog.testing import capture_logs

from common import keys
from common.errors import RetryableError
from worker.sweeps import interval_slot, reconcile_schedule, scope_probe

TAKERS: dict[str, tuple[Callable[[redis.Redis, float, str], bool], str]] = {
    "reconcile": (reconcile_schedule.take_slot, keys.RECONCILE_SCHEDULER_LOCK),
    "scope-probe": (scope_probe.take_slot, keys.SCOPE_PROBE_SLOT),
}


@pytest.mark.parametrize("name", sorted(TAKERS))
def test_each_scheduler_holds_its_slot_for_one_whole_interval(redis_url: str, name: str) -> None:
    take, key = TAKERS[name]
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.delete(key)
    assert [take(client, 30.0, f"host-{i}:1") for i in range(3)] == [True, False, False]
    assert client.get(key) == "host-0:1"
    assert 29_000 < client.pttl(key) <= 30_000


class Stop(BaseException):
    pass


def test_the_loop_logs_a_service_error_and_tries_again_at_the_next_tick() -> None:
    calls: list[int] = []

    def tick() -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise RetryableError("Redis is unavailable", reason="redis_unavailable")
        if len(calls) == 3:
            raise Stop

    with capture_logs() as logs, pytest.raises(Stop):
        interval_slot.every_interval(tick, pause_s=0.0, failed="sweep_failed")
    assert len(calls) == 3
    assert [(e["event"], e["reason"]) for e in logs] == [("sweep_failed", "redis_unavailable")]
