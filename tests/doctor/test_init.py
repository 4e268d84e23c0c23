"""`rolesync init` against the sandbox and a real Redis: from nothing to a green doctor, asked through click's
runner with typed answers, and `--non-interactive` with flags."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from click.testing import CliRunner

from cli.main import cli
from common.plans.mapping import load_plans
from ops.setup_wizard import propose
from sandbox.client import SandboxClient
from tests.doctor.conftest import WEBHOOK_URL
from tests.procs import ROOT, Proc, rolesync, wait_until
from tests.sandbox_fixture import RunningSandbox


def bare(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """Nothing set up: only Redis (and the sandbox's http allowance), run from an empty directory."""
    return {"REDIS_URL": env["REDIS_URL"], "ROLESYNC_INSECURE_LOCAL": "1", "HOME": str(tmp_path)}


def paying_customers(kinde: SandboxClient) -> None:
    for n, plan in enumerate(("plan_subscriber", "plan_client")):
        user = kinde.create_user(email=f"p{n}@example.com", send_webhook=False)
        kinde.change_plan(user["customer_id"], plan)


def test_proposes_the_role_named_like_the_plan_and_none_when_nothing_fits() -> None:
    roles = ["role_admin", "role_client", "role_subscriber"]
    assert propose(["plan_client", "plan_subscriber", "enterprise"], roles) == {
        "plan_client": ["role_client"], "plan_subscriber": ["role_subscriber"], "enterprise": []}  # fmt: skip


def test_init_from_nothing_to_a_green_doctor_in_under_a_minute(
    env: dict[str, str], sandbox: RunningSandbox, kinde: SandboxClient, tmp_path: Path
) -> None:
    paying_customers(kinde)
    started = time.monotonic()
    answers = [sandbox.url, sandbox.client_id, sandbox.client_secret,
               "plan_gold",  # a plan code no customer has yet: Kinde cannot list plans
               "", "", "-",  # accept plan_client and plan_subscriber as proposed; plan_gold maps to nothing
               WEBHOOK_URL, "y"]  # fmt: skip
    fresh = tmp_path / "fresh"  # the doctor fixtures' own plans.toml lives in tmp_path
    fresh.mkdir()
    plans, env_file = fresh / "plans.toml", fresh / "rolesync.env"
    result = CliRunner().invoke(cli, ["init", "--plans", str(plans), "--env-file", str(env_file)],
                                env=bare(env, tmp_path), input="\n".join(answers) + "\n")  # fmt: skip

    assert "Kinde's Management API has no plan listing" in result.output
    assert "plan_client, plan_subscriber" in result.output
    assert "every scope the service needs is granted" in result.output
    assert dict(load_plans(plans).roles_by_plan) == {"plan_client": ("role_client",),
                                                     "plan_subscriber": ("role_subscriber",)}  # fmt: skip
    assert "KINDE_CLIENT_SECRET=\n" in env_file.read_text()  # the secret is never written
    assert sandbox.client_secret not in result.output + env_file.read_text()
    assert "[ok  ] webhook" in result.output
    assert result.exit_code == 1  # the one thing left: no worker runs yet, and doctor says so
    assert "[FAIL] workers" in result.output

    ready = {**env, **sandbox.kinde_env(), "ROLESYNC_PLANS": str(plans), "ROLESYNC_WEBHOOK_URL": WEBHOOK_URL}
    worker = Proc("worker", rolesync("worker", "--processes", "1", "--threads", "1"), ready, tmp_path)
    try:
        wait_until(lambda: subprocess.run(rolesync("doctor"), env=ready, cwd=ROOT, capture_output=True).returncode
                   == 0, timeout=45, what="a green doctor")  # fmt: skip
    finally:
        worker.stop()
    took = time.monotonic() - started
    assert took < 60, f"init to a green doctor took {took:.1f} s"
    print(f"\ninit from nothing to a green doctor: {took:.1f} s")


def test_non_interactive_takes_flags_and_refuses_to_overwrite(
    env: dict[str, str], kinde: SandboxClient, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    paying_customers(kinde)
    given = {**bare(env, tmp_path), **sandbox.kinde_env()}
    plans = tmp_path / "init-plans.toml"
    args = ["init", "--non-interactive", "--map", "plan_client=role_client+role_admin", "--plans", str(plans),
            "--env-file", str(tmp_path / "init.env"), "--no-register-webhook"]  # fmt: skip

    first = CliRunner().invoke(cli, args, env=given)
    again = CliRunner().invoke(cli, args, env=given)
    unknown = CliRunner().invoke(cli, [*args, "--force", "--map", "plan_x=role_nope"], env=given)

    assert dict(load_plans(plans).roles_by_plan) == {"plan_client": ("role_admin", "role_client")}
    assert "--- rolesync doctor" in first.output
    assert again.exit_code == 1
    assert "exists: nothing overwritten" in again.stderr
    assert unknown.exit_code == 1
    assert "role_nope are not in the tenant" in unknown.stderr
    no_secret = {k: v for k, v in given.items() if k != "KINDE_CLIENT_SECRET"}
    refused = CliRunner().invoke(cli, [*args, "--force"], env={**no_secret, "KINDE_CLIENT_SECRET": ""})
    assert refused.exit_code == 2
    assert "never taken as a flag" in refused.stderr


def test_wrong_credentials_stop_init_in_one_line_and_write_nothing(
    env: dict[str, str], sandbox: RunningSandbox, tmp_path: Path
) -> None:
    given = {**bare(env, tmp_path), **sandbox.kinde_env(), "KINDE_CLIENT_SECRET": "not-the-secret"}
    plans = tmp_path / "never.toml"

    result = CliRunner().invoke(cli, ["init", "--non-interactive", "--plans", str(plans)], env=given)

    assert result.exit_code == 1
    assert result.stderr.startswith("rolesync: ")
    assert "Traceback" not in result.output
    assert "not-the-secret" not in result.output
    assert not plans.exists()
