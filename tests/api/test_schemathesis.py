"""schemathesis against a live `rolesync api`: the served /openapi.json says exactly what the server does.

A real `rolesync api` (uvicorn, its own process) reads a real Valkey that the worker's in-process core
filled by handling real events (tests/api/test_plan_selection.py's world: linked customers with plans,
snapshots, timelines, member counts) plus a meter reading and an app report. schemathesis (its CLI, as a
user runs it) generates requests from the schema with both auth schemes, path ids drawn half the time
from those seeded (so every operation reaches its 200), and runs every check (`--checks all`): a 5xx,
an answer off its schema, schema-valid data refused, invalid data accepted, ... any failure fails here,
and so does any warning (an operation that never got past 401/403 or 404, a regex it cannot use, ...).
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from common.entitlements.manual_grants import HandGrant, RedisHandGrantStore
from tests.api.test_plan_selection import PLANS, guard_world
from tests.procs import Proc, free_port, http_ok, rolesync, wait_until
from tests.worker.events.test_handlers import OLD, billing
from worker.events.handlers import handle_event

pytestmark = pytest.mark.integration
EXAMPLES = 40  # per operation and phase: ~640 cases; 6-8 s idle, more on a loaded box (docs/benchmarks.md)
RUN_TIMEOUT_S = 420  # the run needs ~15 s of CPU: 80 s wall measured at a load of 34 on 2 cores
CUSTOMERS, USERS, GRANTS = ("customer_1", "customer_acme"), ("kp_1", "kp_a"), ("hg_seeded",)
CONFIG = """
[warnings]
fail-on = true  # also: an operation that only ever got 401/403 (missing_auth) or 404 (missing_test_data)

[auth.openapi.bearer]
bearer = "{key}"

[auth.openapi.workflowSecret]
api_key = "{secret}"

[dictionaries.customers]
values = {customers}

[dictionaries.users]
values = {users}

[dictionaries.grants]
values = {grants}

[parameters]
"path.customer_id" = {{ dictionary = "customers", probability = 0.5 }}
"path.user_id" = {{ dictionary = "users", probability = 0.5 }}
"path.grant_id" = {{ dictionary = "grants", probability = 0.5 }}
"body.user_id" = {{ dictionary = "users", probability = 0.5 }}
"body.user.id" = {{ dictionary = "users", probability = 0.5 }}
"body.context.user.id" = {{ dictionary = "users", probability = 0.5 }}
"""


def _listed(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


@pytest.fixture
def live_api(redis_url: str, tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """(base URL, API key, workflow secret) of a `rolesync api` over the seeded Redis."""
    world = guard_world(redis_url)
    meter = billing("ev_meter", "customer_1", "customer.meter_usage_updated", feature_code="api_calls",
                    meter_value="150", meter_type_code="absolute")  # fmt: skip
    handle_event(world.deps, meter, OLD)
    seeded = HandGrant(GRANTS[0], USERS[0], "", ("role_client",), "partner", "ops", time.time())
    RedisHandGrantStore(world.redis).put(seeded, time.time())
    (tmp_path / "plans.toml").write_text(PLANS.format(on_error="allow"))
    key, secret, port = secrets.token_urlsafe(32), secrets.token_urlsafe(32), free_port()
    env = {"REDIS_URL": redis_url, "ROLESYNC_API_KEYS": f"fuzz:{key}:users+customers+usage:write+grants:write",
           "ROLESYNC_WORKFLOW_SECRET": secret, "ROLESYNC_PLANS": str(tmp_path / "plans.toml"),
           "ROLESYNC_API_AUTH_FAILURES": "0", "ROLESYNC_LOG_LEVEL": "warning"}  # fmt: skip
    proc = Proc("api", rolesync("api", "--port", str(port)), env, tmp_path)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: http_ok(f"{url}/readyz"), timeout=60, what="the API ready")
        report = httpx.put(f"{url}/v1/customers/customer_1/usage/projects", json={"value": 4},
                           headers={"Authorization": f"Bearer {key}"})  # fmt: skip
        assert report.status_code == 200, report.text
        yield url, key, secret
    finally:
        proc.stop()


@pytest.mark.timeout(RUN_TIMEOUT_S + 60)  # beyond the suite's 300 s: the run's own bound comes first
def test_schemathesis_finds_no_failure_of_any_kind(live_api: tuple[str, str, str], tmp_path: Path) -> None:
    url, key, secret = live_api
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG.format(key=key, secret=secret, customers=_listed(CUSTOMERS), users=_listed(USERS),
                                    grants=_listed(GRANTS)))  # fmt: skip
    argv = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run", f"{url}/openapi.json",
            "--checks", "all", "--max-examples", str(EXAMPLES), "--seed", "22", "--workers", "1",
            "--generation-database", "none", "--no-color", "--request-timeout", "30"]  # fmt: skip
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)
    assert done.returncode == 0, done.stdout[-20_000:] + done.stderr[-5_000:]
