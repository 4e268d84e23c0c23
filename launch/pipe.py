"""The whole pipe as real processes: Redis, `rolesync sandbox`, `rolesync ingest`, N worker launchers.

The one launcher behind `rolesync demo`, the chaos suites, the benchmarks and the process tests;
each caller says what it needs in `PipeOptions` (workers, sandbox faults and limits, environment
overrides) and where the logs go. Each worker launcher is its own process group (a Dramatiq main,
its worker processes, its janitor), as a container would be: the Dramatiq CLI shuts every worker
down when one dies, so a crash is modelled by SIGKILLing a whole group and starting it again, the
way a supervisor restarts a pod. Every process logs into `log_dir`.
"""

from __future__ import annotations

import json
import secrets
import signal
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis

from launch.processes import Child, free_port, http_ok, rolesync_argv, wait_until
from launch.redis_server import RedisUnderTest, Valkey
from sandbox.client import SandboxClient
from sandbox.config import DEFAULT_CLIENT_ID, PLANS_TOML, rolesync_env

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0  # SIGTERM to SIGKILL, for the whole pipe at once (a loaded box stops slowly)


@dataclass(frozen=True)
class PipeOptions:
    workers: int = 1  # worker launchers started with the pipe; more can be started later
    processes: int = 1  # Dramatiq worker processes per launcher
    threads: int = 4
    env: Mapping[str, str] = field(default_factory=dict)  # overrides for the ingest, the workers and `Pipe.env`
    plans_toml: str = PLANS_TOML
    time_scale: float = 100.0  # Kinde's webhook retry delays divided by this
    sandbox_args: tuple[str, ...] = ()  # faults and limits, e.g. ("--rate-limit", "20", "--variant", "flat")
    deliver: bool = True  # the sandbox posts its webhooks to the ingest from the start
    log_level: str = "info"
    fsync: str = "always"  # appendfsync of the embedded Valkey the pipe starts (common/infra/embedded_redis.py's)
    record_credentials: bool = False  # on close, write the M2M secret and issued tokens for a secrets scan
    api: bool = False  # also start `rolesync api` (the read API; needs ROLESYNC_API_KEYS in `env`)


@dataclass
class Pipe:
    log_dir: Path
    redis_server: RedisUnderTest
    kinde: SandboxClient
    sandbox_url: str
    ingest_url: str
    client_secret: str = field(repr=False)  # a failing test prints the pipe: never the secret
    env: dict[str, str] = field(repr=False)  # holds KINDE_CLIENT_SECRET and the like
    options: PipeOptions
    services: dict[str, Child] = field(default_factory=dict)  # sandbox and ingest
    workers: list[Child] = field(default_factory=list)
    starts: int = 0
    api_url: str = field(default_factory=lambda: f"http://127.0.0.1:{free_port()}")  # with `PipeOptions.api`

    @property
    def webhook_url(self) -> str:
        return f"{self.ingest_url}/webhooks/kinde"

    @property
    def redis_url(self) -> str:
        return self.redis_server.url

    @property
    def children(self) -> list[Child]:
        return [*self.services.values(), *self.workers]

    def r(self) -> redis.Redis:
        return self.redis_server.client()

    def start_worker(self, slot: int, *, threads: int | None = None, env: Mapping[str, str] | None = None) -> Child:
        """Start the launcher in `slot` (appending when the slot is new); `env` adds to the pipe's."""
        threads = threads or self.options.threads
        argv = rolesync_argv("worker", "--processes", str(self.options.processes), "--threads", str(threads))
        child = Child(f"worker{slot}-{self.starts}", argv, {**self.env, **(env or {})}, self.log_dir)
        self.starts += 1
        if slot < len(self.workers):
            self.workers[slot] = child
        else:
            self.workers.append(child)
        return child

    def kill_worker(self, slot: int) -> None:
        """SIGKILL the launcher's whole group, as a crashed pod."""
        self.workers[slot].signal(signal.SIGKILL)
        self.workers[slot].popen.wait(timeout=10)

    def stop_worker(self, slot: int) -> None:
        """SIGTERM: the worker finishes what it holds, as a rolling deploy stops a pod."""
        self.workers[slot].stop()

    def server_pid(self, name: str) -> int:
        """The pid uvicorn reports for the sandbox or the ingest (which serves in-process)."""
        for line in self.services[name].output().splitlines():
            if "Started server process [" in line:
                return int(line.split("Started server process [", 1)[1].split("]", 1)[0])
        raise LookupError(f"no server pid in {name}.log")


@contextmanager
def running_pipe(
    log_dir: Path, options: PipeOptions | None = None, *, redis_server: RedisUnderTest | None = None
) -> Iterator[Pipe]:
    """Start the pipe, wait until the sandbox and the ingest answer, stop everything on the way out.

    Without `redis_server` an embedded Valkey is started under `log_dir/valkey` (and stopped after).
    """
    options = options or PipeOptions()
    log_dir.mkdir(parents=True, exist_ok=True)
    server = redis_server or Valkey(log_dir / "valkey", options.fsync)
    server.start()
    try:
        pipe = _pipe(log_dir, options, server)
        try:
            _start(pipe)
            yield pipe
        finally:
            _close(pipe)
    finally:
        server.stop()


def _pipe(log_dir: Path, options: PipeOptions, server: RedisUnderTest) -> Pipe:
    sandbox_url, ingest_url = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    secret = f"pipe-secret-{secrets.token_hex(12)}"  # fresh per pipe, so a log scan can look for it
    env = {
        **rolesync_env(server.url, sandbox_url, log_dir, options.plans_toml),
        "KINDE_CLIENT_SECRET": secret, "ROLESYNC_LOG_LEVEL": options.log_level, **options.env,
    }  # fmt: skip
    kinde = SandboxClient(sandbox_url, timeout=60)
    return Pipe(log_dir, server, kinde, sandbox_url, ingest_url, secret, env, options)


def _start(pipe: Pipe) -> None:
    options, port = pipe.options, pipe.sandbox_url.rsplit(":", 1)[1]
    sandbox_argv = rolesync_argv(
        "sandbox", "--no-banner", "--port", port, "--webhook-url", pipe.webhook_url if options.deliver else "",
        "--time-scale", f"{options.time_scale:g}", "--client-id", DEFAULT_CLIENT_ID,
        "--client-secret", pipe.client_secret, *options.sandbox_args,
    )  # fmt: skip
    pipe.services["sandbox"] = Child("sandbox", sandbox_argv, {}, pipe.log_dir)
    ingest_argv = rolesync_argv("ingest", "--port", pipe.ingest_url.rsplit(":", 1)[1])
    pipe.services["ingest"] = Child("ingest", ingest_argv, pipe.env, pipe.log_dir)
    if options.api:  # started beside the others: each spends its start-up importing, not waiting on them
        api_argv = rolesync_argv("api", "--port", pipe.api_url.rsplit(":", 1)[1])
        pipe.services["api"] = Child("api", api_argv, pipe.env, pipe.log_dir)
    _wait_ready(pipe.services["sandbox"], f"{pipe.sandbox_url}/_sandbox/health")
    _wait_ready(pipe.services["ingest"], f"{pipe.ingest_url}/readyz")
    if options.api:
        _wait_ready(pipe.services["api"], f"{pipe.api_url}/healthz")
    for slot in range(options.workers):
        pipe.start_worker(slot)


def _wait_ready(child: Child, url: str) -> None:
    wait_until(lambda: http_ok(url) or not child.alive(), timeout=READY_TIMEOUT_S, what=f"the {child.name} to answer")
    if not child.alive():
        raise RuntimeError(f"the {child.name} exited before it answered; its log: {child.log_path}")


def _close(pipe: Pipe) -> None:
    try:
        if pipe.options.record_credentials:
            _record_credentials(pipe)
    finally:
        pipe.kinde.close()
        children = [*pipe.workers, *reversed(pipe.services.values())]
        for child in children:  # all at once: each Dramatiq launcher takes seconds to wind down
            child.signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S  # one grace for all: waited in turn, 10 s each added up
        for child in children:
            child.stop(timeout=max(0.0, deadline - time.monotonic()))


def _record_credentials(pipe: Pipe) -> None:
    """The secrets scan (chaos/secrets.py) needs every access token the sandbox handed out, and the secret."""
    (pipe.log_dir / "issued-tokens.json").write_text(json.dumps(pipe.kinde.issued_tokens()))
    (pipe.log_dir / "client-secret.txt").write_text(pipe.client_secret)
