"""The whole pipe with real processes: sandbox Kinde, uvicorn ingest, Dramatiq worker, real Redis.

Started once per module; tests use fresh users and customers so they never step on each other.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from sandbox.client import SandboxClient
from sandbox.config import PLANS_TOML, rolesync_env
from tests.procs import Proc, free_port, http_ok, rolesync, wait_until
from tests.sandbox_fixture import running_sandbox

E2E_DB = 1


@dataclass(frozen=True)
class Pipe:
    kinde: SandboxClient
    ingest_url: str
    redis_url: str
    procs: dict[str, Proc]


@pytest.fixture(scope="module")
def pipe_plans() -> str:
    """The plans file the module's pipe runs with; a test module overrides this fixture for another."""
    return PLANS_TOML


@pytest.fixture(scope="module")
def pipe_env() -> dict[str, str]:
    """Variables the module's pipe adds to the standard environment; a test module overrides this fixture."""
    return {}


@pytest.fixture(scope="module")
def pipe(redis_server_url: str, tmp_path_factory: pytest.TempPathFactory, pipe_plans: str,
         pipe_env: dict[str, str]) -> Iterator[Pipe]:  # fmt: skip
    tmp = tmp_path_factory.mktemp("e2e")
    redis_url = f"{redis_server_url}/{E2E_DB}"
    ingest_port = free_port()
    ingest_url = f"http://127.0.0.1:{ingest_port}"
    with running_sandbox(tmp, webhook_url=f"{ingest_url}/webhooks/kinde") as sandbox:
        env = {**rolesync_env(redis_url, sandbox.url, tmp, pipe_plans), **pipe_env}
        procs = {
            "ingest": Proc("ingest", rolesync("ingest", "--port", str(ingest_port)), env, tmp),
            "worker": Proc("worker", rolesync("worker", "--processes", "1", "--threads", "4"), env, tmp),
        }
        try:
            wait_until(lambda: http_ok(f"{ingest_url}/readyz"), timeout=30, what="ingest ready")
            yield Pipe(sandbox.client, ingest_url, redis_url, procs)
        finally:
            for proc in procs.values():
                proc.stop()
