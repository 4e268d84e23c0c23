"""Real pipes (launch/pipe.py) for the on-call tests: sandbox Kinde, uvicorn ingest, Dramatiq worker, real Redis.

Each test module gets its own pipe on its own Redis database (flushed first), so dead letters,
links and reconcile summaries of one module never leak into another's assertions. The worker runs
with a 2 s heartbeat timeout and a 1 s janitor, so crash recovery is seconds here (production
defaults: 60 s and 15 s, see docs/on-call.md). Commands run in-process through click's runner
with the same environment the worker has.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result

from cli.main import cli
from common.messages import PASS_QUEUES
from common.settings import Settings
from launch.pipe import Pipe, PipeOptions, running_pipe
from launch.redis_server import RunningRedis
from ops.queues import queue_stats
from sandbox.client import SandboxClient
from sandbox.config import rolesync_env
from tests.procs import wait_until

FAST_RECOVERY = {"ROLESYNC_HEARTBEAT_TIMEOUT_S": "2", "ROLESYNC_JANITOR_INTERVAL_S": "1"}


@dataclass(frozen=True)
class OnCall:
    """The launched pipe (launch/pipe.py) and on-call's commands against it."""

    pipe: Pipe

    @property
    def kinde(self) -> SandboxClient:
        return self.pipe.kinde

    @property
    def ingest_url(self) -> str:
        return self.pipe.ingest_url

    @property
    def redis_url(self) -> str:
        return self.pipe.redis_url

    @property
    def env(self) -> dict[str, str]:
        return self.pipe.env

    @property
    def tmp(self) -> Path:
        return self.pipe.log_dir

    def cli(self, *args: str, input: str | None = None) -> Result:
        return run_cli(self.env, *args, input=input)

    def cli_json(self, *args: str) -> Any:
        result = self.cli(*args, "--json")
        return json.loads(result.stdout)

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, decode_responses=True)

    def settled(self) -> bool:
        """No webhook left to deliver, nothing waiting, running or delayed on the queues."""
        return not self.kinde.pending_deliveries() and self.queues_idle()

    def queues_idle(self) -> bool:
        client = self.redis()
        try:
            stats = [queue_stats(client, q) for q in PASS_QUEUES]
        finally:
            client.close()
        return not any(s.waiting or s.in_flight or s.delayed for s in stats)


def parked_for_an_heir(pipe: OnCall) -> tuple[str, dict[str, Any]]:
    """A plan for a customer whose user is gone, parked as customer_unresolved, and a new account to link it to:
    (the customer id, the heir). Billing events name only the customer while the plan changes."""
    gone = pipe.kinde.create_user(email="gone@example.com", send_webhook=False)
    pipe.kinde.delete_user(gone["id"])
    heir = pipe.kinde.create_user(email="heir@example.com", with_customer=False)
    pipe.kinde.set_webhooks(variant="customer_id")
    try:
        pipe.kinde.change_plan(gone["customer_id"], "plan_client")
        wait_until(lambda: parked(pipe, gone["customer_id"]), timeout=30, what="the billing events parked")
    finally:
        pipe.kinde.set_webhooks(variant="mix")
    return gone["customer_id"], heir


def parked(pipe: OnCall, customer_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = pipe.cli_json("dlq", "list", "--customer", customer_id)["records"]
    return [r for r in found if r["reason"] == "customer_unresolved"]


def run_cli(env: Mapping[str, str], *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=dict(env), input=input, catch_exceptions=False)


ONCALL_ENV = {
    "KINDE_API_RPS": "200",  # the sandbox has no limit; the default 10/s would make the sweeps slow
    **FAST_RECOVERY,
    "ROLESYNC_SCOPE_PROBE_INTERVAL_S": "1",  # events waiting for a scope replay within seconds of its grant
}


def pipe_env(tmp: Path, redis_url: str, sandbox_url: str, **extra: str) -> dict[str, str]:
    return {**rolesync_env(redis_url, sandbox_url, tmp), **ONCALL_ENV, **extra}


def settings_of(env: Mapping[str, str]) -> Settings:
    return Settings.from_env(env)


def fresh_db(redis_server_url: str, db: int) -> str:
    url = f"{redis_server_url}/{db}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


@pytest.fixture(scope="module")
def pipe(
    redis_server_url: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[OnCall]:
    db = int(getattr(request.module, "PIPE_DB", 3))
    time_scale = float(getattr(request.module, "SANDBOX_TIME_SCALE", 100.0))
    server = RunningRedis(fresh_db(redis_server_url, db))
    options = PipeOptions(env=ONCALL_ENV, time_scale=time_scale)
    with running_pipe(tmp_path_factory.mktemp("ops"), options, redis_server=server) as launched:
        yield OnCall(launched)
