"""Crash recovery is bounded, and SIGTERM drains in-flight work (real Dramatiq processes, real Redis).

Bound after a worker is SIGKILLed mid-task: its message comes back once its broker heartbeat is
`ROLESYNC_HEARTBEAT_TIMEOUT_S` old and a recovery sweep (every `ROLESYNC_JANITOR_INTERVAL_S`) runs on
a live worker: `crash_bound_s` (worker/runtime/recovery/). Here 2 s + 1 s; production defaults 60 s + 15 s.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from common import keys
from common.messages import EVENTS_QUEUE
from ops.enqueue import event_enqueuer
from ops.queues import queue_stats
from sandbox.client import SandboxClient
from tests.ops.conftest import fresh_db, pipe_env, settings_of
from tests.procs import Proc, rolesync, wait_until
from tests.sandbox_fixture import running_sandbox
from worker.runtime.broker import build_broker
from worker.runtime.recovery import crash_bound_s

pytestmark = pytest.mark.e2e
SLOW_LOOKUP = "GET /api/v1/user"
SHUTDOWN_S = 10
# The pass on a loaded box: 15 s was missed at load ~30 (21.0 > 20.6, 23.6 > 21.9 s); Dramatiq alone takes minutes.
PASS_SLACK_S = 30.0


def user_created(user_id: str) -> dict[str, Any]:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "type": "user.created",
        "event_id": f"event_{user_id}",
        "timestamp": stamp,
        "data": {"user": {"id": user_id}},
    }


def in_flight(client: redis.Redis) -> int:
    return queue_stats(client, EVENTS_QUEUE).in_flight


def worker(name: str, env: dict[str, str], tmp: Path) -> Proc:
    return Proc(name, rolesync("worker", "--processes", "1", "--threads", "1"), env, tmp)


def paying_user(kinde: SandboxClient) -> dict[str, Any]:
    user = kinde.create_user(send_webhook=False)
    kinde.change_plan(user["customer_id"], "plan_subscriber")
    return user


def test_sigkilled_worker_message_converges_within_the_bound(redis_server_url: str, tmp_path: Path) -> None:
    url = fresh_db(redis_server_url, 6)
    client = redis.Redis.from_url(url, decode_responses=True)
    with running_sandbox(tmp_path) as sandbox:
        env = {**pipe_env(tmp_path, url, sandbox.url), "ROLESYNC_SHUTDOWN_TIMEOUT_S": str(SHUTDOWN_S)}
        user = paying_user(sandbox.client)
        sandbox.client.set_faults(SLOW_LOOKUP, latency_ms=8000)
        first = worker("worker-a", env, tmp_path)
        event_enqueuer(build_broker(settings_of(env)))(user_created(user["id"]), {}, 0)
        wait_until(lambda: sandbox.client.token_requests() >= 1, timeout=30, what="worker A inside the task")
        first.signal(signal.SIGKILL)
        killed_at = time.monotonic()
        first.stop()
        sandbox.client.clear_faults()
        assert in_flight(client) == 1  # still held by the dead worker's ack set
        replacement = worker("worker-b", env, tmp_path)
        try:
            # worker A's last beat stays behind after SIGKILL; B's own makes two
            wait_until(lambda: client.zcard(keys.WORKER_HEARTBEATS) >= 2, timeout=30, what="worker B up")
            up_after = time.monotonic() - killed_at
            wait_until(lambda: sandbox.client.user_roles(user["id"]) == ["role_subscriber"], timeout=30,
                       interval=0.1, what="the killed message converged by worker B")  # fmt: skip
            recovered_after = time.monotonic() - killed_at
            print(f"recovery: worker B up after {up_after:.1f}s, converged {recovered_after:.1f}s after SIGKILL")
            # The slack covers the pass itself on a loaded CI box; what this guards against is Dramatiq's
            # own recovery, which waits for a random maintenance roll (minutes, docs/stack-notes.md).
            # B's sweep starts with B: the bound counts from the later of the kill and B being up.
            late_start_s = max(0.0, up_after - settings_of(env).heartbeat_timeout_s)
            bound_s = crash_bound_s(settings_of(env)) + late_start_s
            assert recovered_after <= bound_s + PASS_SLACK_S
            drain_in_flight_on_sigterm(sandbox.client, client, env, replacement)
        finally:
            replacement.stop()


def drain_in_flight_on_sigterm(kinde: SandboxClient, client: redis.Redis, env: dict[str, str], running: Proc) -> None:
    """SIGTERM (what compose/Kubernetes send) lets the task in hand finish, then the worker exits 0."""
    user = paying_user(kinde)
    kinde.set_faults(SLOW_LOOKUP, latency_ms=2000)
    event_enqueuer(build_broker(settings_of(env)))(user_created(user["id"]), {}, 0)
    wait_until(lambda: in_flight(client) >= 1, timeout=20, what="worker B on the task")
    running.popen.send_signal(signal.SIGTERM)  # to the main process only, as a container runtime does
    asked_at = time.monotonic()
    assert running.popen.wait(timeout=SHUTDOWN_S + 5) == 0
    drained_after = time.monotonic() - asked_at
    print(f"drain: worker exited {drained_after:.1f}s after SIGTERM (timeout {SHUTDOWN_S}s)")
    assert drained_after <= SHUTDOWN_S
    assert kinde.user_roles(user["id"]) == ["role_subscriber"]
    assert in_flight(client) == 0
