"""`rolesync sandbox` as a process: seed file, JSON snapshot across a restart, clear errors, ingest + rotation."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from tests.procs import Proc, free_port, http_ok, rolesync, wait_until
from tests.sandbox.conftest import fetch_token
from tests.sandbox_fixture import running_sandbox

pytestmark = pytest.mark.integration  # `rolesync sandbox` processes

SCENARIO = """
[rate_limit]
rate = 0.01  # one token per 100 s: the bucket cannot refill while the test runs, however slow the machine
burst = 2
[switches]
users_billing_expand = false
[faults."GET /api/v1/organizations"]
error_503 = 1.0
[plans.plan_team]
features = { seats = 3 }
[[roles]]
key = "role_extra"
name = "Extra"
[[orgs]]
code = "org_acme"
name = "Acme"
customer = true
plan = "plan_team"
[[users]]
id = "kp_alice"
org = "org_acme"
plan = "plan_client"
roles = ["role_admin"]
"""


def test_seed_file_sets_tenant_limits_switches_and_faults(tmp_path: Path) -> None:
    seed = tmp_path / "scenario.toml"
    seed.write_text(SCENARIO)
    with running_sandbox(tmp_path, extra_args=["--seed-file", str(seed)]) as sandbox:
        for attempt in range(2):  # a reset goes back to the seeded state
            assert sandbox.client.user_roles("kp_alice", "org_acme") == ["role_admin"], attempt
            token = fetch_token(sandbox.url).json()["access_token"]
            kinde = httpx.Client(base_url=sandbox.url, headers={"Authorization": f"Bearer {token}"})
            assert "role_extra" in {r["key"] for r in kinde.get("/api/v1/roles").json()["roles"]}
            assert kinde.get("/api/v1/users", params={"expand": "billing"}).status_code == 400
            assert kinde.get("/api/v1/organizations").status_code == 503
            assert kinde.get("/api/v1/roles").status_code == 429  # burst 2 spent above
            kinde.close()
            sandbox.client.reset()


def test_snapshot_keeps_the_tenant_across_a_restart(tmp_path: Path) -> None:
    snapshot = tmp_path / "tenant.json"
    args = ["--snapshot-file", str(snapshot)]
    with running_sandbox(tmp_path, extra_args=args) as sandbox:
        user = sandbox.client.create_user(send_webhook=False)
        sandbox.client.grant_role(user["id"], "role_client")
    with running_sandbox(tmp_path, extra_args=args) as sandbox:
        assert sandbox.client.user_roles(user["id"]) == ["role_client"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seed-file", "BAD"], "seed file"),
        (["--time-scale", "0"], "--time-scale must be greater than 0"),
    ],
)
def test_bad_start_options_exit_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[faults.'*']\nerror_999 = 1\n")
    argv = rolesync("sandbox", "--port", str(free_port()), *[str(bad) if a == "BAD" else a for a in args])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_the_ingest_survives_key_rotation_with_and_without_grace(tmp_path: Path, redis_url: str) -> None:
    port = free_port()
    ingest_url = f"http://127.0.0.1:{port}"
    with running_sandbox(tmp_path, webhook_url=f"{ingest_url}/webhooks/kinde") as sandbox:
        env = {"REDIS_URL": redis_url, **sandbox.kinde_env(), "ROLESYNC_JWKS_COOLDOWN_S": "1"}
        ingest = Proc("ingest", rolesync("ingest", "--port", str(port)), env, tmp_path)
        try:
            wait_until(lambda: http_ok(f"{ingest_url}/readyz"), timeout=30, what="ingest ready")
            for grace_s in (None, 60, 0):  # before any rotation, then with a grace period, then dropping at once
                if grace_s is not None:
                    sandbox.client.rotate_keys(grace_s=grace_s)
                sandbox.client.create_user()
                wait_until(lambda: sandbox.client.pending_deliveries() == 0, timeout=20, what="delivered")
        finally:
            ingest.stop()
        attempts = sandbox.client.deliveries()
        delivered = {d["event_id"] for d in attempts if d["status"] == 200}
        assert len(delivered) == 3, attempts
