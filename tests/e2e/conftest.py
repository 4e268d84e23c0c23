"""The whole pipe with real processes (launch/pipe.py): sandbox Kinde, uvicorn ingest, Dramatiq worker, real Redis.

Started once for the e2e package: tests use fresh users and customers so they never step on each other.
Its plans file sets `[payment_failed] action = "suspend"` for test_payment_flow.py; that policy changes
only what a failed payment does, and no other test here sends one, so they see the default behaviour.
A module that needs other plans or settings overrides `pipe` with a module fixture over `e2e_pipe`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from launch.pipe import Pipe, PipeOptions, running_pipe
from launch.redis_server import RunningRedis
from sandbox.config import PLANS_TOML

E2E_DB = 1
E2E_PLANS = PLANS_TOML + '[payment_failed]\naction = "suspend"\n'


@contextmanager
def e2e_pipe(
    redis_server_url: str,
    log_dir: Path,
    *,
    plans: str = E2E_PLANS,
    env: Mapping[str, str] | None = None,
    db: int = E2E_DB,  # a module running its own pipe beside the shared one needs its own database
) -> Iterator[Pipe]:
    options = PipeOptions(plans_toml=plans, env=dict(env or {}))
    with running_pipe(log_dir, options, redis_server=RunningRedis(f"{redis_server_url}/{db}")) as pipe:
        yield pipe


@pytest.fixture(scope="package")
def pipe(redis_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipe]:
    with e2e_pipe(redis_server_url, tmp_path_factory.mktemp("e2e")) as running:
        yield running
