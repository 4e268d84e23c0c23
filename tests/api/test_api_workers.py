"""`rolesync api --workers 2` as real processes: each child answers on the one port, a killed child is replaced,
the guard port is still served (by the parent), SIGTERM stops them all; a child that cannot start stops the server.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.procs import Proc, free_port, http_ok, rolesync, wait_until

pytestmark = pytest.mark.e2e  # starts `rolesync api` and its worker processes
KEY = secrets.token_urlsafe(32)


def env(redis_url: str) -> dict[str, str]:
    return {"REDIS_URL": redis_url, "ROLESYNC_API_KEYS": f"app:{KEY}", "ROLESYNC_LOG_LEVEL": "info"}


def workers_of(parent: int) -> set[int]:
    """The uvicorn children (spawned), not multiprocessing's resource tracker."""
    found = set()
    for child in Path(f"/proc/{parent}/task/{parent}/children").read_text().split():
        with contextlib.suppress(FileNotFoundError):
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.add(int(child))
    return found


def two_workers(parent: int, gone: int = 0) -> set[int] | None:
    found = workers_of(parent)
    return found if len(found) == 2 and gone not in found else None


def read(port: int) -> int:
    """One read on a fresh connection: 404 user_not_found is a full answer (auth, Redis, view)."""
    answer = httpx.get(f"http://127.0.0.1:{port}/v1/users/kp_nobody/entitlements", timeout=5.0,
                       headers={"Authorization": f"Bearer {KEY}"})  # fmt: skip
    assert answer.json()["error"]["code"] == "user_not_found"
    return answer.status_code


@contextlib.contextmanager
def stopped(pid: int) -> Iterator[None]:
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:  # uvicorn's supervisor may have replaced it meanwhile (no ping answer in 5 s: a loaded box)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


def test_two_workers_both_serve_a_dead_one_is_replaced_and_sigterm_stops_them_all(
    redis_url: str, tmp_path: Path
) -> None:
    port, guard_port = free_port(), free_port()
    argv = rolesync("api", "--port", str(port), "--guard-port", str(guard_port), "--workers", "2")
    proc = Proc("api", argv, env(redis_url), tmp_path)
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/readyz"), timeout=60, what="the read port")
        assert http_ok(f"http://127.0.0.1:{guard_port}/readyz")  # the guard's listener, in the parent
        first, second = sorted(wait_until(lambda: two_workers(proc.popen.pid), what="two workers"))
        for other in (second, first):
            with stopped(other):  # only the other worker can take the connection now
                assert read(port) == 404
        os.kill(first, signal.SIGKILL)
        replaced = wait_until(lambda: two_workers(proc.popen.pid, gone=first), timeout=30, what="a replacement")
        (new,) = replaced - {second}
        with stopped(second):
            wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/readyz"), timeout=30, what="the replacement")
            assert read(port) == 404
        live = workers_of(proc.popen.pid)
        assert new in live  # and `second`, unless the supervisor replaced it while stopped (see `stopped`)
        assert len(live) == 2
        proc.popen.send_signal(signal.SIGTERM)  # the parent only: it stops its children
        assert proc.popen.wait(timeout=30) == 0, proc.output()
        for pid in live | {second}:
            wait_until(lambda pid=pid: not Path(f"/proc/{pid}").exists() or _zombie(pid), timeout=10, what="a child")
    finally:
        proc.stop()
    assert "api_workers_stopped" in proc.output()


def test_a_worker_that_cannot_start_stops_the_server_in_one_line(redis_url: str) -> None:
    metrics_port = free_port()
    with socket.socket() as one, socket.socket() as two:  # both children's metrics ports are taken
        one.bind(("127.0.0.1", metrics_port + 1))
        two.bind(("127.0.0.1", metrics_port + 2))
        one.listen()
        two.listen()
        argv = rolesync("api", "--port", str(free_port()), "--workers", "2", "--metrics-port", str(metrics_port))
        done = subprocess.run(argv, env={**os.environ, **env(redis_url)}, capture_output=True, text=True, timeout=90)
    assert done.returncode == 2, done.stderr
    assert "a read API worker failed to start" in done.stderr
    assert "no free metrics port" in done.stdout + done.stderr


def _zombie(pid: int) -> bool:
    with contextlib.suppress(FileNotFoundError):
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    return True
