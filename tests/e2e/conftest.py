"""The whole pipe with real processes (launch/pipe.py): sandbox Kinde, uvicorn ingest, Dramatiq worker, real Redis.

Started once per module; tests use fresh users and customers so they never step on each other.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from launch.pipe import Pipe, PipeOptions, running_pipe
from launch.redis_server import RunningRedis
from sandbox.config import PLANS_TOML

E2E_DB = 1


@pytest.fixture(scope="module")
def pipe_plans() -> str:
    """The plans file the module's pipe runs with; a test module overrides this fixture for another."""
    return PLANS_TOML


@pytest.fixture(scope="module")
def pipe(redis_server_url: str, tmp_path_factory: pytest.TempPathFactory, pipe_plans: str) -> Iterator[Pipe]:
    server = RunningRedis(f"{redis_server_url}/{E2E_DB}")
    with running_pipe(tmp_path_factory.mktemp("e2e"), PipeOptions(plans_toml=pipe_plans), redis_server=server) as pipe:
        yield pipe
