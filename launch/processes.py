"""Child processes for `rolesync demo` (and the tests): start, wait until ready, always clean up.

Each child runs in its own session so a stop signal reaches its whole process group (the
Dramatiq CLI forks worker processes of its own). Output goes to a log file, not a pipe nobody
reads, so a chatty child can never block on a full pipe.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

import httpx

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], T], *, timeout: float = 20.0, interval: float = 0.05, what: str = "") -> T:
    """Call `check` until it returns a truthy value; raise TimeoutError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last = check()
    while not last:
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what or check!r} (last={last!r})")
        time.sleep(interval)
        last = check()
    return last


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def rolesync_argv(*args: str) -> list[str]:
    """argv for the `rolesync` CLI run by this same interpreter (works without the script on PATH)."""
    return [sys.executable, "-m", "cli", *args]


class Child:
    """A child process whose output is captured to `log_dir/name.log`."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], log_dir: Path, cwd: Path | None = None):
        self.name = name
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.popen = subprocess.Popen(
            argv, env=full_env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the whole group, then SIGKILL what is left after `timeout` seconds."""
        self.signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.popen.wait(timeout=5)
        self._reap_group()
        self._log.close()

    def _reap_group(self) -> None:
        # Grandchildren (Dramatiq's forked workers) may outlive a killed parent.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
