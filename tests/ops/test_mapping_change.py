"""A changed plans.toml on real processes: the worker restarted with it logs the dry run and converges
every existing customer to it by itself, with no webhook; with `ROLESYNC_MAPPING_CHANGE=hold` it
waits for `rolesync reconcile --apply-mapping`. Sandbox over HTTP, uvicorn ingest, Dramatiq
worker, real Redis (tests/ops/conftest.py). The tests run in order: each restarts the worker.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from common import keys
from common.plans.fleet_mapping import MappingStore
from common.plans.mapping import parse_plans
from launch.processes import Child
from sandbox.config import PLANS_TOML
from tests.ops.conftest import OnCall
from tests.procs import wait_until

pytestmark = pytest.mark.e2e
PIPE_DB = 9
SWAPPED = '[plans]\nplan_subscriber = ["role_client"]\nplan_client = ["role_subscriber"]\n'
# The restarted workers check their mapping every half second (production: 5 s), so "several ticks" is short.
TICK_S = 0.5
ORIGINAL_FP, SWAPPED_FP = parse_plans(PLANS_TOML).fingerprint, parse_plans(SWAPPED).fingerprint


def restart_worker(pipe: OnCall, plans: str, **extra: str) -> Child:
    pipe.pipe.stop_worker(0)
    Path(pipe.env["ROLESYNC_PLANS"]).write_text(plans)
    return pipe.pipe.start_worker(0, env={"ROLESYNC_MAPPING_TICK_S": f"{TICK_S:g}", **extra})


def applied(pipe: OnCall) -> str | None:
    found = MappingStore(pipe.redis()).applied()
    return found.fingerprint if found else None


def roles(pipe: OnCall, world: dict[str, Any]) -> dict[str, list[str]]:
    found = {"subscriber": pipe.kinde.user_roles(world["subscriber"]), "client": pipe.kinde.user_roles(world["client"])}
    return found | {m: pipe.kinde.user_roles(m, world["org"]) for m in world["members"]}


def roles_become(pipe: OnCall, world: dict[str, Any], subscriber: str, client: str) -> None:
    expected = {"subscriber": [subscriber], "client": [client]} | {m: [client] for m in world["members"]}
    wait_until(lambda: roles(pipe, world) == expected, timeout=60, what=f"roles to become {expected}")


@pytest.fixture(scope="module")
def world(pipe: OnCall) -> dict[str, Any]:
    """A subscriber, a client, and an org paying plan_client for two members, converged under PLANS_TOML."""
    people = {}
    for plan in ("plan_subscriber", "plan_client"):
        user = pipe.kinde.create_user(email=f"{uuid.uuid4().hex[:8]}@example.com")
        pipe.kinde.change_plan(user["customer_id"], plan)
        people[plan] = user["id"]
    org = pipe.kinde.create_org(name=f"Acme {uuid.uuid4().hex[:6]}")
    members = [pipe.kinde.create_user(org_code=org["code"], with_customer=False)["id"] for _ in range(2)]
    client = pipe.redis()
    wait_until(lambda: client.exists(keys.customer_link(org["customer_id"])), timeout=30, what="org link learned")
    pipe.kinde.change_plan(org["customer_id"], "plan_client")
    found = {"subscriber": people["plan_subscriber"], "client": people["plan_client"], "org": org["code"],
             "members": members}  # fmt: skip
    roles_become(pipe, found, "role_subscriber", "role_client")
    wait_until(pipe.settled, timeout=30, what="set-up settled")
    return found


def test_the_first_start_records_its_mapping_as_applied_without_a_sweep(pipe: OnCall, world: dict[str, Any]) -> None:
    wait_until(lambda: applied(pipe) == ORIGINAL_FP, timeout=30, what="the running mapping recorded")
    assert "mapping_adopted" in pipe.pipe.workers[0].output()
    assert pipe.redis().get(keys.RECONCILE_LAST) is None  # no sweep ran
    assert pipe.cli_json("status")["mapping"]["summary"] == f"in step ({ORIGINAL_FP})"


def test_a_changed_plans_file_reaches_every_customer_by_itself(pipe: OnCall, world: dict[str, Any]) -> None:
    pipe.kinde.set_webhooks(paused=True)  # whatever the sandbox might send waits: only the mapping changes
    try:
        worker = restart_worker(pipe, SWAPPED)
        roles_become(pipe, world, "role_client", "role_subscriber")
        wait_until(lambda: applied(pipe) == SWAPPED_FP, timeout=60, what="the new mapping recorded as applied")
    finally:
        pipe.kinde.set_webhooks(paused=False)
    log = worker.output()
    assert "mapping_change_previewed" in log
    preview = next(line for line in log.splitlines() if "mapping_change_previewed" in line)
    assert f"{world['subscriber']} in " in preview
    assert "+role_client -role_subscriber" in preview
    assert all(m in preview for m in world["members"])
    assert log.index("mapping_change_previewed") < log.index("mapping_sweep_started")  # printed before any write
    status = pipe.cli_json("status")
    assert status["mapping"]["summary"] == f"in step ({SWAPPED_FP})"
    assert status["last_reconcile"]["source"] == "mapping"


def test_a_held_change_waits_for_apply_mapping(pipe: OnCall, world: dict[str, Any]) -> None:
    worker = restart_worker(pipe, PLANS_TOML, ROLESYNC_MAPPING_CHANGE="hold")  # a rollback, held
    held = wait_until(lambda: pipe.cli_json("status")["mapping"]["held"], timeout=30, what="the change held")
    assert held is True
    wait_until(lambda: "mapping_change_held" in worker.output(), timeout=30, what="the hold logged")
    time.sleep(3 * TICK_S)  # several ticks of the worker's mapping check: none may sweep
    assert applied(pipe) == SWAPPED_FP
    assert roles(pipe, world)["subscriber"] == ["role_client"]
    status = pipe.cli("status")
    assert status.exit_code == 1
    assert "mapping changed, held" in status.stdout
    assert "--apply-mapping" in status.stdout

    asked = pipe.cli("reconcile", "--apply-mapping", "--reason", "deploy 7: swap back", input="n\n")
    assert f"Apply plans.toml mapping {ORIGINAL_FP} to " in asked.stdout  # with the count of linked customers
    assert "Nothing applied." in asked.stdout
    result = pipe.cli("reconcile", "--apply-mapping", "--timeout", "2m", "--reason", "deploy 7: swap back", "--yes")
    assert result.exit_code == 0, result.output
    (audited, *_) = pipe.cli_json("audit")["entries"]
    assert (audited["action"], audited["fingerprint"], audited["reason"]) == ("mapping_apply", ORIGINAL_FP,
                                                                              "deploy 7: swap back")  # fmt: skip
    roles_become(pipe, world, "role_subscriber", "role_client")
    assert applied(pipe) == ORIGINAL_FP
    assert pipe.cli_json("status")["mapping"]["summary"] == f"in step ({ORIGINAL_FP})"
    assert pipe.cli("reconcile", "--apply-mapping", "--reason", "again", "--yes").exit_code == 1  # nothing to apply
