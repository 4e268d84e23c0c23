"""The guard holds under load, on real parts: `rolesync api` (uvicorn) on a real Valkey, flooded with reads.

A load process (bench/http_load.py, its own event loop in another process) keeps `FLOOD` keep-alive
connections each asking `GET /v1/customers/{id}` back to back, far more than the API's in-flight bound
(`ROLESYNC_API_MAX_IN_FLIGHT`, 64 by default). Meanwhile the test asks `POST /v1/plan-selection` one at a
time, as Kinde's workflow would, and times each answer. The decision is a refusal computed from Redis
(an org of three members asking for a plan that allows two); `on_error` is `allow`, so an answer that ran
out the guard's own time bound would say allow, never the refusal.

The bound is per request: every answer under 1 s (Kinde's workflow waits 5 s; 1 s is the issue's target)
while the flood is answered and shed. The guard is on `--guard-port` (api/guard_port.py), as deploy/k8s
runs it. Before that, on one port, the same flood pushed the slowest answer past 1 s in six runs of eight, and
without the in-flight bound every decision was on_error's (the figures are in docs/security.md).
"""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from bench.http_load import LoadResult, Plan, run_requests
from tests.api.test_plan_selection import OPS_KEY, PLANS, SECRET, context, guard_world
from tests.procs import Proc, free_port, http_ok, rolesync, wait_until

pytestmark = pytest.mark.e2e  # starts `rolesync api` and a load process

FLOOD, FLOOD_S, RAMP_S = 400, 8.0, 1.5
ASKS, ASK_EVERY_S, BOUND_S = 12, 0.25, 1.0
GUARD_URL = "http://127.0.0.1:{port}/v1/plan-selection"
REFUSAL = {"allow": False, "message": "To move to Free you first need to:",
           "reasons": ["reduce org_members to 2 or fewer (now 3)"]}  # fmt: skip


@dataclass
class Flood:
    """Reads sent from another process for FLOOD_S seconds; `result` once `thread` is done."""

    port: int
    result: LoadResult = field(default_factory=LoadResult)
    thread: threading.Thread | None = None

    def start(self) -> None:
        read = (f"GET /v1/customers/customer_acme HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                f"Authorization: Bearer {OPS_KEY}\r\n\r\n").encode()  # fmt: skip
        plan = Plan(port=self.port, duration_s=FLOOD_S, connections=FLOOD)
        requests = [read] * (FLOOD * 2000)  # more than FLOOD_S allows: the duration ends the flood

        def send() -> None:
            self.result = run_requests(plan, requests, processes=1)

        self.thread = threading.Thread(target=send, daemon=True)
        self.thread.start()

    def wait(self) -> LoadResult:
        assert self.thread is not None
        self.thread.join(timeout=FLOOD_S + 60)
        assert not self.thread.is_alive(), "the flood did not end"
        return self.result


@dataclass(frozen=True)
class Asked:
    seconds: float
    status: int
    body: dict[str, object]


@dataclass(frozen=True)
class Ports:
    reads: int = field(default_factory=free_port)
    guard: int = field(default_factory=free_port)  # the same as `reads` when the guard has no port of its own


@contextmanager
def api_process(redis_url: str, tmp_path: Path, ports: Ports, max_in_flight: int = 64) -> Iterator[None]:
    plans = tmp_path / "plans.toml"
    plans.write_text(PLANS.format(on_error="allow"))
    env = {"REDIS_URL": redis_url, "ROLESYNC_API_KEYS": f"ops:{OPS_KEY}", "ROLESYNC_WORKFLOW_SECRET": SECRET,
           "ROLESYNC_PLANS": str(plans), "ROLESYNC_API_MAX_IN_FLIGHT": str(max_in_flight),
           "ROLESYNC_LOG_LEVEL": "warning"}  # fmt: skip
    own = ["--guard-port", str(ports.guard)] if ports.guard != ports.reads else []
    proc = Proc("api", rolesync("api", "--port", str(ports.reads), *own), env, tmp_path)
    try:
        for url in {f"http://127.0.0.1:{port}/readyz" for port in (ports.reads, ports.guard)}:
            wait_until(functools.partial(http_ok, url), timeout=60, what=url)
        yield
    finally:
        proc.stop()


def decisions_under_a_flood(redis_url: str, tmp_path: Path, ports: Ports, max_in_flight: int = 64) -> tuple[
    list[Asked], LoadResult
]:  # fmt: skip
    """Each plan-selection answer, timed, while the flood of reads runs; and what the flood got."""
    guard_world(redis_url)
    asked: list[Asked] = []
    with api_process(redis_url, tmp_path, ports, max_in_flight), httpx.Client(timeout=30.0) as client:
        flood = Flood(ports.reads)
        flood.start()
        time.sleep(RAMP_S)  # let every flood connection open and start asking
        for _ in range(ASKS):
            started = time.perf_counter()
            answer = client.post(GUARD_URL.format(port=ports.guard), json=context("kp_a", "org_acme"),
                                 headers={"x-rolesync-workflow-secret": SECRET})  # fmt: skip
            asked.append(Asked(time.perf_counter() - started, answer.status_code, answer.json()))
            time.sleep(ASK_EVERY_S)
        result = flood.wait()
    return asked, result


def statuses(result: LoadResult) -> dict[str, int]:
    found: dict[str, int] = {}
    for answer, count in result.answers.items():
        found[answer[:3]] = found.get(answer[:3], 0) + count
    return found


def test_a_flood_of_reads_cannot_push_plan_selection_answers_past_a_second(redis_url: str, tmp_path: Path) -> None:
    """As deploy/k8s runs it: the guard on `--guard-port`, the flood on the reads' port."""
    asked, result = decisions_under_a_flood(redis_url, tmp_path, Ports())
    answered = statuses(result)
    took = sorted(round(a.seconds, 3) for a in asked)
    print(f"plan-selection under {FLOOD} read connections: {took} s; flood {answered}, {result.rps():.0f}/s")
    assert answered.get("200", 0) > 0  # the flood was served
    assert answered.get("503", 0) > 0  # and shed
    assert all(a.status == 200 and a.body == REFUSAL for a in asked), asked  # decided from Redis, not on_error
    assert max(took) < BOUND_S, f"plan-selection answers took {took} s under the flood"


def test_the_reads_port_no_longer_answers_plan_selection_and_the_guard_port_serves_no_reads(
    redis_url: str, tmp_path: Path
) -> None:
    guard_world(redis_url)
    ports = Ports()
    with api_process(redis_url, tmp_path, ports), httpx.Client(timeout=30.0) as client:
        selection = {"json": context("kp_a", "org_acme"), "headers": {"x-rolesync-workflow-secret": SECRET}}
        assert client.post(GUARD_URL.format(port=ports.reads), **selection).status_code == 404
        assert client.post(GUARD_URL.format(port=ports.guard), **selection).json() == REFUSAL
        read = {"headers": {"Authorization": f"Bearer {OPS_KEY}"}}
        assert client.get(f"http://127.0.0.1:{ports.reads}/v1/customers/customer_acme", **read).status_code == 200
        assert client.get(f"http://127.0.0.1:{ports.guard}/v1/customers/customer_acme", **read).status_code == 404


def test_a_guard_port_that_cannot_be_opened_stops_the_start_in_one_line(redis_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "REDIS_URL": redis_url, "ROLESYNC_API_KEYS": f"ops:{OPS_KEY}"}
        argv = rolesync("api", "--port", str(free_port()), "--guard-port", str(port))
        result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == f"rolesync: the guard's listener did not start on port {port}: see the log above"
    assert "address already in use" in result.stdout
