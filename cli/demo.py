"""`rolesync demo`: the whole pipe on one machine, watched step by step.

Starts the pipe with launch/pipe.py: a real Redis-compatible server (embedded Valkey unless
REDIS_URL is set), the sandbox Kinde, the ingest, one worker and the read API; then signs a user up
and moves them through two plans and a cancellation, printing the roles the sandbox holds after each
step, and shows the plan-selection guard refusing an organization's downgrade until a member leaves.
Every process it started is stopped on the way out, including on Ctrl-C. With `--keep-running` the stack stays
up after the walk-through, and the demo prints the environment that points a shell at it until Ctrl-C.
"""

from __future__ import annotations

import functools
import os
import secrets
import shlex
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from launch.pipe import Pipe, PipeOptions, running_pipe
from launch.processes import wait_until
from launch.redis_server import RedisUnderTest, RunningRedis, Valkey

STATE_DIR = Path(".rolesync")
STEP_TIMEOUT_S = 15.0
CONSOLE_LABEL = "demo-oncall"


def _demo_pipe() -> PipeOptions:
    # Fresh per run, printed only with --keep-running: the read API's key and the plan-selection hook's secret.
    # The second key signs in to the on-call console (/console/) and may act there.
    keys = f"demo:{secrets.token_urlsafe(24)},{CONSOLE_LABEL}:{secrets.token_urlsafe(24)}:console:write"
    secrets_env = {"ROLESYNC_API_KEYS": keys, "ROLESYNC_WORKFLOW_SECRET": secrets.token_urlsafe(24)}
    return PipeOptions(workers=1, time_scale=50, api=True, env=secrets_env)


def run_demo(*, keep_running: bool = False) -> int:
    started = time.monotonic()
    # A plain SIGTERM would skip the clean-up below; treat it like Ctrl-C. And Ctrl-C itself even when started with
    # SIGINT ignored (a script's background job, some runners): Python keeps an inherited SIG_IGN.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    logs = (STATE_DIR / "logs").resolve()
    click.echo("Starting the sandbox Kinde, the webhook ingest, one worker and the read API ...")
    with running_pipe(logs, _demo_pipe(), redis_server=_redis()) as pipe:
        click.echo(f"  (logs of each process are in {logs}/)")
        try:
            _walk_through(pipe)
        except TimeoutError as exc:
            _explain_failure(exc, pipe)
            return 1
        if keep_running:
            _keep_running(pipe)
        else:
            click.echo(
                f"\nThe on-call console was at {_console(pipe)[0]} (`rolesync demo --keep-running` keeps it up)."
            )
    click.echo(f"\nDone in {time.monotonic() - started:.1f}s. Every process the demo started has been stopped.")
    return 0


def _console(pipe: Pipe) -> tuple[str, str]:
    """The console's URL and the key that signs in to it (console:write)."""
    entry = next(e for e in pipe.env["ROLESYNC_API_KEYS"].split(",") if e.startswith(f"{CONSOLE_LABEL}:"))
    return f"{pipe.api_url}/console/", entry.split(":")[1]


def _keep_running(pipe: Pipe) -> None:
    """Print what a shell needs to use the running stack, then wait for Ctrl-C (or SIGTERM)."""
    env = pipe.env
    exports = {name: env[name] for name in (
        "REDIS_URL", "KINDE_DOMAIN", "KINDE_CLIENT_ID", "KINDE_CLIENT_SECRET", "ROLESYNC_INSECURE_LOCAL",
        "ROLESYNC_PLANS", "ROLESYNC_API_KEYS", "ROLESYNC_WORKFLOW_SECRET")}  # fmt: skip
    api_key = env["ROLESYNC_API_KEYS"].split(",")[0].split(":", 1)[1]
    click.echo("\nThe stack keeps running. In another shell, point rolesync at it:\n")
    for name, value in exports.items():
        click.echo(f"export {name}={shlex.quote(value)}")
    click.echo(f'export API_KEY={shlex.quote(api_key)}   # for curl -H "Authorization: Bearer $API_KEY" (the read API)')
    click.echo(f"\n  sandbox (Kinde): {pipe.sandbox_url}   control API: {pipe.sandbox_url}/_sandbox/ (docs/sandbox.md)")
    click.echo(f"  ingest:          {pipe.webhook_url}")
    click.echo(f"  read API:        {pipe.api_url}")
    url, key = _console(pipe)
    click.echo(f"  console:         {url}   sign in with the demo key: {key}")
    click.echo(f"  logs:            {pipe.log_dir}/")
    click.echo("\nPress Ctrl-C to stop everything.", nl=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        click.echo("\nStopping ...")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _redis() -> RedisUnderTest:
    given = os.environ.get("REDIS_URL", "").strip()
    if given:
        return RunningRedis(given)
    click.echo("Starting an embedded Valkey (Redis-compatible) server, data under .rolesync/valkey ...")
    return Valkey((STATE_DIR / "valkey").resolve())


DEMO_FEATURES = {"plan_subscriber": {"seats": 1, "projects": 3}, "plan_client": {"seats": 5, "projects": 2147483647}}


def _walk_through(pipe: Pipe) -> None:
    from cli.demo_guard import refused_downgrade

    kinde, redis_url = pipe.kinde, pipe.redis_url
    for plan, features in DEMO_FEATURES.items():
        kinde.define_plan(plan, features)  # served by GET /billing/entitlements, paged, in Kinde's shape
    show = functools.partial(_show_snapshot, redis_url)
    user = kinde.create_user(email="ada@example.com")
    user_id, customer_id = user["id"], user["customer_id"]
    click.echo(f"\n1. Ada signs up. Kinde creates user {user_id} and billing customer {customer_id}.")
    _show_roles(kinde.user_roles, user_id, expected=[])
    show(user_id, expected=[])
    click.echo("\n2. Ada buys the Subscriber plan (plan_subscriber).")
    kinde.change_plan(customer_id, "plan_subscriber")
    _show_roles(kinde.user_roles, user_id, expected=["role_subscriber"])
    show(user_id, expected=["role_subscriber"])
    click.echo("\n3. Ada upgrades to the Client plan (plan_client).")
    kinde.change_plan(customer_id, "plan_client")
    _show_roles(kinde.user_roles, user_id, expected=["role_client"])
    show(user_id, expected=["role_client"])
    click.echo("\n4. Ada cancels her subscription.")
    kinde.cancel_plan(customer_id)
    _show_roles(kinde.user_roles, user_id, expected=[])
    show(user_id, expected=[])
    refused_downgrade(kinde, pipe.api_url, pipe.env["ROLESYNC_WORKFLOW_SECRET"], timeout=STEP_TIMEOUT_S)


def _show_roles(read: Callable[[str], list[str]], user_id: str, *, expected: list[str]) -> None:
    wait_until(lambda: sorted(read(user_id)) == sorted(expected), timeout=STEP_TIMEOUT_S, what=f"roles {expected}")
    held = ", ".join(read(user_id)) or "no roles at all"
    click.echo(f"   Kinde now says Ada holds: {held}.")


def _show_snapshot(redis_url: str, user_id: str, *, expected: list[str]) -> None:
    """What the read API would answer for the user: the snapshot the worker's pass kept in Redis."""
    from common.entitlements.snapshots import RedisSnapshotStore
    from common.infra.connections import redis_client
    from common.settings import Secret, Settings

    store = RedisSnapshotStore(redis_client(Settings(redis_url=Secret(redis_url))))

    def found() -> list[dict[str, Any]]:
        return [s.to_dict() for s in store.of_user(user_id)]

    wait_until(lambda: [f["roles"] for f in found()] == [expected], timeout=STEP_TIMEOUT_S, what="the snapshot")
    [snap] = found()
    plans = ", ".join(f"{p['code']} (since {p['subscribed_on']})" for p in snap["plans"]) or "none"
    features = ", ".join(f"{f['feature_code']} ≤ {'unlimited' if f['unlimited'] else f['limit_max']}"
                         for f in snap["features"]) or "none"  # fmt: skip
    click.echo(f"   Snapshot in {snap['org_code']}: plans {plans}; features {features}.")


def _explain_failure(exc: TimeoutError, pipe: Pipe) -> None:
    click.echo(f"\nThe demo did not finish: {exc}", err=True)
    for child in pipe.children:
        state = "running" if child.alive() else f"exited with {child.popen.returncode}"
        click.echo(f"  {child.name}: {state}; last lines of {child.log_path}:", err=True)
        for line in child.output().splitlines()[-5:]:
            click.echo(f"    {line[:200]}", err=True)
