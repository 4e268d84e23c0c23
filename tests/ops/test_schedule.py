"""The reconcile scheduler: one sweep per interval across replicas, wired in only when configured."""

from __future__ import annotations

import redis

from common import keys
from common.settings import Secret, Settings
from tests.procs import wait_until
from worker.entrypoints.launcher import dramatiq_argv
from worker.sweeps.reconcile_schedule import take_slot


def test_only_one_replica_takes_each_interval(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    takers = [take_slot(client, 0.5, f"host-{i}:1") for i in range(4)]
    assert takers == [True, False, False, False]
    assert client.get(keys.RECONCILE_SCHEDULER_LOCK) == "host-0:1"
    wait_until(lambda: take_slot(client, 0.5, "host-3:1"), timeout=5, what="the next interval's slot")


def test_scheduler_process_runs_only_when_an_interval_is_set() -> None:
    base = Settings(redis_url=Secret("redis://x"))
    every = Settings.from_env({"ROLESYNC_RECONCILE_EVERY": "6h"})
    assert every.reconcile_every_s == 6 * 3600
    assert "worker.sweeps.reconcile_schedule:run" not in dramatiq_argv(base, processes=1, threads=1)
    assert "worker.sweeps.reconcile_schedule:run" in dramatiq_argv(every, processes=1, threads=1)
