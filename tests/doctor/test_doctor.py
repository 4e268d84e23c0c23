"""`rolesync doctor` against the sandbox and a real Redis, set up wrong one way at a time.

Each test breaks one thing and asserts the check that names it, and the fix it prints; the
in-process `run_doctor` speaks real HTTP to the sandbox and real RESP to Redis, like the CLI.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from common import keys
from common.infra.deadletters import DeadLetter, RedisDeadLetterStore
from common.messages import EVENTS_QUEUE
from common.settings import Settings
from common.webhooks.events import SUBSCRIBED_EVENTS
from doctor.access import connect
from doctor.checks import CHECKS, run_doctor
from doctor.register import register
from doctor.report import Result, Status
from doctor.webhooks import KindeWebhookRegistry
from sandbox.client import SandboxClient
from sandbox.tokens import ALL_SCOPES
from tests.doctor.conftest import WEBHOOK_URL
from tests.procs import ROOT, Proc, rolesync, wait_until


def by_name(results: list[Result]) -> dict[str, Result]:
    return {r.name: r for r in results}


def statuses(results: list[Result]) -> dict[str, Status]:
    return {r.name: r.status for r in results}


def register_ours(env: dict[str, str]) -> None:
    done = subprocess.run(rolesync("kinde", "register-webhook"), env=env, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_checks_run_in_the_issue_order_one_line_each(env: dict[str, str]) -> None:
    """Every check reports once, in the order a new user fixes things."""
    names = [r.name for r in run_doctor(env)]
    assert names == [name for name, _ in CHECKS]
    assert names[:5] == ["settings", "kinde domain", "redis", "plans file", "m2m token"]
    assert names[-3:] == ["workers", "queue", "dead letters"]


def test_green_when_everything_is_right(env: dict[str, str], tmp_path: Path) -> None:
    """Webhook registered, a real worker running, Redis a queue: every check ok and exit 0."""
    register_ours(env)
    worker = Proc("worker", rolesync("worker", "--processes", "1", "--threads", "1"), env, tmp_path)
    try:
        wait_until(lambda: run_doctor(env)[-3].status is Status.OK, timeout=30, what="the worker's heartbeat")
        done = subprocess.run(rolesync("doctor"), env=env, cwd=ROOT, capture_output=True, text=True)
    finally:
        worker.stop()
    assert done.returncode == 0, done.stdout
    lines = done.stdout.splitlines()
    # the one warning: the sandbox is http on loopback, allowed only by ROLESYNC_INSECURE_LOCAL=1
    checks = [line for line in lines[:-1] if line.startswith("[")]  # a warning's fix is its own indented line
    (insecure,) = [line for line in checks if not line.startswith("[ok  ]")]
    assert "fix: unset ROLESYNC_INSECURE_LOCAL" in done.stdout
    assert insecure.startswith("[WARN] kinde domain"), done.stdout
    assert "ROLESYNC_INSECURE_LOCAL=1" in insecure
    assert lines[-1] == "all checks passed, 1 warning(s)"
    assert any("plans file" in line and "failed payments: keep" in line for line in lines), done.stdout


def test_missing_read_scope_is_named_from_kindes_answer(env: dict[str, str], kinde: SandboxClient) -> None:
    kinde.set_scopes([s for s in ALL_SCOPES if s != "read:billing_agreements"])
    scopes = by_name(run_doctor(env))["scopes"]
    assert scopes.status is Status.FAIL
    assert "read:billing_agreements (403 on GET /billing/agreements)" in scopes.summary
    assert "Manage scopes: enable read:billing_agreements" in scopes.fix


def test_missing_entitlements_scope_is_named_while_plans_read_entitlements(
    env: dict[str, str], kinde: SandboxClient
) -> None:
    kinde.set_scopes([s for s in ALL_SCOPES if s != "read:billing_entitlements"])
    scopes = by_name(run_doctor(env))["scopes"]
    assert scopes.status is Status.FAIL
    assert "read:billing_entitlements (403 on GET /billing/entitlements)" in scopes.summary


def test_missing_write_scope_is_read_from_the_token(env: dict[str, str], kinde: SandboxClient) -> None:
    kinde.set_scopes([s for s in ALL_SCOPES if s != "delete:organization_user_roles"])
    scopes = by_name(run_doctor(env))["scopes"]
    assert scopes.status is Status.FAIL
    assert "delete:organization_user_roles (not in the token's scopes)" in scopes.summary


def test_missing_webhook_scope_only_warns_and_skips_the_webhook_check(
    env: dict[str, str], kinde: SandboxClient
) -> None:
    kinde.set_scopes([s for s in ALL_SCOPES if s != "read:webhooks"])
    found = by_name(run_doctor(env))
    assert found["scopes"].status is Status.WARN
    assert "read:webhooks" in found["scopes"].fix
    assert found["webhook"].status is Status.SKIP


def test_unknown_role_key_suggests_the_closest(env: dict[str, str]) -> None:
    Path(env["ROLESYNC_PLANS"]).write_text('[plans]\nplan_client = ["role_clinet"]\n')
    roles = by_name(run_doctor(env))["role keys"]
    assert roles.status is Status.FAIL
    assert roles.summary == "not in Kinde: role_clinet (did you mean role_client?)"
    assert "create the role with that key" in roles.fix


def test_plan_code_no_agreement_uses_is_a_warning(env: dict[str, str], kinde: SandboxClient) -> None:
    Path(env["ROLESYNC_PLANS"]).write_text('[plans]\nplan_clinet = ["role_client"]\n')
    kinde.change_plan(kinde.create_user(send_webhook=False)["customer_id"], "plan_client")
    results = run_doctor(env)
    codes = by_name(results)["plan codes"]
    assert codes.status is Status.WARN
    assert "plan_clinet (did you mean plan_client?)" in codes.summary
    assert "plan codes in use: plan_client" in codes.summary


def test_no_webhook_names_the_register_command(env: dict[str, str]) -> None:
    hook = by_name(run_doctor(env))["webhook"]
    assert hook.status is Status.FAIL
    assert hook.summary == f"no Kinde webhook points at {WEBHOOK_URL}"
    assert hook.fix == f"rolesync kinde register-webhook --url {WEBHOOK_URL}"


@pytest.fixture
def delivering_sandbox(kinde: SandboxClient) -> Iterator[SandboxClient]:
    """The sandbox started with --webhook-url WEBHOOK_URL, as the README's walk-through starts it."""
    kinde.set_webhooks(url=WEBHOOK_URL, paused=True)  # paused: nothing listens there
    yield kinde
    kinde.set_webhooks(url="", paused=False)  # webhook settings survive a reset


def test_a_sandbox_delivering_by_itself_needs_no_registration(env: dict[str, str],
                                                              delivering_sandbox: SandboxClient) -> None:  # fmt: skip
    hook = by_name(run_doctor(env))["webhook"]
    assert (hook.status, hook.summary) == (Status.OK, f"the sandbox delivers every event type to {WEBHOOK_URL} "
                                                      "by itself (its --webhook-url)")  # fmt: skip
    assert by_name(run_doctor({k: v for k, v in env.items() if k != "ROLESYNC_WEBHOOK_URL"}))["webhook"].status \
        is Status.OK  # fmt: skip


def test_a_webhook_registered_where_the_sandbox_delivers_is_a_doubled_delivery(
    env: dict[str, str], delivering_sandbox: SandboxClient
) -> None:
    register_ours(env)
    hook = by_name(run_doctor(env))["webhook"]
    assert hook.status is Status.WARN
    assert "each arrives twice" in hook.summary
    assert hook.fix.startswith("delete webhook ")


def test_a_sandbox_delivering_elsewhere_is_told_to_deliver_here_not_to_register(
    env: dict[str, str], delivering_sandbox: SandboxClient
) -> None:
    elsewhere = "http://127.0.0.1:9/other/webhooks/kinde"
    hook = by_name(run_doctor({**env, "ROLESYNC_WEBHOOK_URL": elsewhere}))["webhook"]
    assert (hook.status, hook.summary) == (Status.FAIL, f"the sandbox delivers to {WEBHOOK_URL}, not to {elsewhere}")
    assert f"--webhook-url {elsewhere}" in hook.fix
    assert "rolesync kinde register-webhook" not in hook.fix


def test_webhook_lacking_events_names_them(env: dict[str, str], kinde: SandboxClient) -> None:
    with httpx.Client() as http:
        KindeWebhookRegistry(connect(Settings.from_env(env), http).api).create(WEBHOOK_URL, ["user.created"])
    hook = by_name(run_doctor(env))["webhook"]
    assert hook.status is Status.FAIL
    assert "lacks customer.agreement_cancelled" in hook.summary


def test_eviction_policy_and_persistence_off_warn(env: dict[str, str], queue_redis: redis.Redis) -> None:
    queue_redis.config_set("maxmemory-policy", "allkeys-lru")
    queue_redis.config_set("appendonly", "no")
    queue_redis.config_set("save", "")
    results = run_doctor(env)
    check = by_name(results)["redis as a queue"]
    assert check.status is Status.WARN
    assert "maxmemory-policy is allkeys-lru" in check.summary
    assert "persistence is off" in check.summary
    assert "CONFIG SET maxmemory-policy noeviction" in check.fix


def test_config_refused_says_it_could_not_check(env: dict[str, str], queue_redis: redis.Redis) -> None:
    """Managed Redis often forbids CONFIG: an ACL user without it stands in for one."""
    queue_redis.acl_setuser("app", enabled=True, passwords=["+app-pw"], keys=["*"], commands=["+@all", "-config"])
    results = run_doctor({**env, "REDIS_URL": env["REDIS_URL"].replace("redis://", "redis://app:app-pw@")})
    check = by_name(results)["redis as a queue"]
    assert check.status is Status.WARN
    assert check.summary.startswith("could not check (CONFIG GET refused")


def test_no_worker_alive_names_the_command(env: dict[str, str]) -> None:
    workers = by_name(run_doctor(env))["workers"]
    assert workers.status is Status.FAIL
    assert workers.fix.startswith("start one: rolesync worker")


def test_stale_heartbeat_is_not_a_live_worker(env: dict[str, str], queue_redis: redis.Redis) -> None:
    queue_redis.zadd(keys.DRAMATIQ_HEARTBEATS, {"gone": (time.time() - 120) * 1000})
    assert by_name(run_doctor(env))["workers"].status is Status.FAIL


def test_doctor_counts_live_workers_as_status_does(env: dict[str, str], queue_redis: redis.Redis) -> None:
    """One `--processes 1` worker: two Dramatiq brokers in `__heartbeats__`, one process beating ours."""
    now = time.time()
    queue_redis.zadd(keys.DRAMATIQ_HEARTBEATS, {"broker-a": now * 1000, "broker-b": now * 1000})
    queue_redis.zadd(keys.WORKER_HEARTBEATS, {"host:1": now})
    workers = by_name(run_doctor(env))["workers"]
    assert workers.status is Status.OK
    assert workers.summary == "1 worker process(es) alive"
    status = subprocess.run(rolesync("status"), env=env, cwd=ROOT, capture_output=True, text=True)
    assert "workers alive: 1 " in status.stdout, status.stdout + status.stderr


def test_queue_not_draining_without_a_worker(env: dict[str, str], queue_redis: redis.Redis) -> None:
    queue_redis.rpush(keys.queue_list(EVENTS_QUEUE), "m1", "m2")
    queue = by_name(run_doctor(env))["queue"]
    assert queue.status is Status.FAIL
    assert queue.summary == "2 message(s) waiting and not draining"
    assert queue.fix.startswith("start one: rolesync worker")


def test_dead_letters_name_the_dlq_command(env: dict[str, str], queue_redis: redis.Redis) -> None:
    record = DeadLetter("event_1", {}, "role_not_found:role_x", "no such role", 1, 1.0, 1.0, "customer_1", None)
    RedisDeadLetterStore(queue_redis).put(record)
    letters = by_name(run_doctor(env))["dead letters"]
    assert letters.status is Status.FAIL
    assert letters.summary == "role_not_found:role_x: 1"
    assert letters.fix.startswith("rolesync dlq list")


def test_wrong_client_secret_names_kindes_error(env: dict[str, str]) -> None:
    found = by_name(run_doctor({**env, "KINDE_CLIENT_SECRET": "not-the-secret"}))
    assert found["m2m token"].status is Status.FAIL
    assert "invalid_client" in found["m2m token"].summary
    assert "KINDE_CLIENT_SECRET" in found["m2m token"].fix
    assert found["scopes"].status is Status.SKIP


def test_missing_settings_fail_first_and_skip_what_needs_them(env: dict[str, str]) -> None:
    results = run_doctor({"ROLESYNC_PLANS": env["ROLESYNC_PLANS"]})
    assert results[0].summary == "not set: KINDE_DOMAIN, KINDE_CLIENT_ID, KINDE_CLIENT_SECRET, REDIS_URL"
    assert statuses(results)["m2m token"] is Status.SKIP
    assert statuses(results)["workers"] is Status.SKIP


def test_secrets_never_printed_and_exit_1_with_json(env: dict[str, str], queue_redis: redis.Redis) -> None:
    """Client secret, Redis password and Kinde's token stay out of text and JSON output."""
    queue_redis.config_set("requirepass", "hunter2-redis")
    try:
        bad = {**env, "REDIS_URL": env["REDIS_URL"].replace("redis://", "redis://:wrong-pass-77@")}
        text = subprocess.run(rolesync("doctor"), env=bad, cwd=ROOT, capture_output=True, text=True)
        as_json = subprocess.run(rolesync("doctor", "--json"), env=bad, cwd=ROOT, capture_output=True, text=True)
    finally:
        queue_redis.config_set("requirepass", "")
    assert text.returncode == as_json.returncode == 1
    report = json.loads(as_json.stdout)
    assert report["ok"] is False
    assert {c["name"]: c["status"] for c in report["checks"]}["redis"] == "fail"
    assert "redis://:****@127.0.0.1" in text.stdout
    assert "refused the password" in text.stdout
    for output in (text.stdout + text.stderr, as_json.stdout + as_json.stderr):
        assert "sandbox-secret" not in output
        assert "wrong-pass-77" not in output
        assert "eyJ" not in output


def test_register_webhook_is_idempotent(env: dict[str, str], kinde: SandboxClient) -> None:
    """Second run sends nothing and says so; the tenant holds one webhook with exactly our types."""
    first = subprocess.run(rolesync("kinde", "register-webhook"), env=env, cwd=ROOT, capture_output=True, text=True)
    calls_before = len(kinde.calls())
    second = subprocess.run(rolesync("kinde", "register-webhook"), env=env, cwd=ROOT, capture_output=True, text=True)
    assert first.stdout.startswith("created webhook webhook_")
    assert second.stdout.endswith(f"already has exactly our {len(SUBSCRIBED_EVENTS)} event types; nothing changed\n")
    assert [c["method"] for c in kinde.calls()[calls_before:]] == ["GET"]
    assert by_name(run_doctor(env))["webhook"].status is Status.OK


def test_register_webhook_patches_an_incomplete_one_and_dry_run_sends_nothing(
    env: dict[str, str], kinde: SandboxClient
) -> None:
    with httpx.Client() as http:
        registry = KindeWebhookRegistry(connect(Settings.from_env(env), http).api)
        hook_id = registry.create(WEBHOOK_URL, ["user.created", "role.created"])
        calls_before = len(kinde.calls())
        preview = register(registry, WEBHOOK_URL, dry_run=True)
        assert [c["method"] for c in kinde.calls()[calls_before:]] == ["GET"]
        done = register(registry, WEBHOOK_URL, dry_run=False)
        (after,) = registry.list()
    assert preview.startswith(f"would update webhook {hook_id}")
    assert f"PATCH /api/v1/webhooks/{hook_id}" in preview
    assert done.startswith(f"updated webhook {hook_id}")
    assert "removing event types: role.created" in done
    assert sorted(after.event_types) == list(SUBSCRIBED_EVENTS)
