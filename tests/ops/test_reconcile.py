"""`rolesync reconcile`: lost webhooks leave drift; a dry run shows it and writes nothing; the sweep ends it.

The sandbox runs Kinde's retry schedule 500 times slower than real (first retry after 2,500 s), so a
dropped delivery stays lost for the whole module, as a webhook Kinde gave up on would. (At 20 times
slower, a first retry after 100 s fell inside the module on a loaded box and fixed drift the sweep was
meant to find.)
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from sandbox.client import SandboxClient
from tests.ops.conftest import OnCall
from tests.procs import wait_until

pytestmark = pytest.mark.e2e
PIPE_DB = 5
WHY = ("--reason", "lost webhooks on 2026-12-01")
SANDBOX_TIME_SCALE = 0.002
CANCELLED, KEPT = 40, 5


def roles_of(kinde: SandboxClient, users: list[dict[str, Any]]) -> dict[str, list[str]]:
    return {u["customer_id"]: kinde.user_roles(u["id"]) for u in users}


def quiet(pipe: OnCall, attempts: int) -> bool:
    """Every first delivery attempt made (dropped or not) and the worker idle."""
    return len(pipe.kinde.deliveries()) >= attempts and pipe.queues_idle()


@pytest.fixture(scope="module")
def world(pipe: OnCall) -> dict[str, Any]:
    """45 subscribers; 40 cancel while 10 % of webhooks are dropped; one more buys with no webhook at all."""
    users = [pipe.kinde.create_user(email=f"r{i}@example.com") for i in range(CANCELLED + KEPT)]
    for user in users:
        pipe.kinde.change_plan(user["customer_id"], "plan_subscriber")
    wait_until(lambda: all(r == ["role_subscriber"] for r in roles_of(pipe.kinde, users).values()), timeout=60,
               what="every subscriber converged")  # fmt: skip
    wait_until(pipe.settled, timeout=30, what="setup settled")
    before = len(pipe.kinde.deliveries())
    pipe.kinde.set_webhooks(drop_rate=0.1)
    for user in users[:CANCELLED]:
        pipe.kinde.cancel_plan(user["customer_id"])
    wait_until(lambda: quiet(pipe, before + CANCELLED), timeout=60, what="cancellations delivered or dropped")
    pipe.kinde.set_webhooks(drop_rate=0.0, url="http://127.0.0.1:9/unreachable")
    unseen = pipe.kinde.create_user(email="unseen@example.com")
    pipe.kinde.change_plan(unseen["customer_id"], "plan_client")
    pipe.kinde.set_webhooks(url=f"{pipe.ingest_url}/webhooks/kinde")
    return {"cancelled": users[:CANCELLED], "kept": users[CANCELLED:], "unseen": unseen}


def drifted(pipe: OnCall, world: dict[str, Any]) -> set[str]:
    wrong = {c for c, roles in roles_of(pipe.kinde, world["cancelled"]).items() if roles != []}
    wrong |= {c for c, roles in roles_of(pipe.kinde, world["kept"]).items() if roles != ["role_subscriber"]}
    unseen = world["unseen"]
    return wrong | ({unseen["customer_id"]} if pipe.kinde.user_roles(unseen["id"]) != ["role_client"] else set())


def writes_since(kinde: SandboxClient, start: int) -> list[dict[str, Any]]:
    return [c for c in kinde.calls()[start:] if c["method"] in ("POST", "DELETE", "PATCH", "PUT")]


def test_dry_run_shows_every_drift_and_writes_nothing(pipe: OnCall, world: dict[str, Any]) -> None:
    drift = drifted(pipe, world)
    assert len(drift) >= 2, "10 % of 40 cancellations dropped should leave drift"
    assert world["unseen"]["customer_id"] in drift
    start = len(pipe.kinde.calls())
    result = pipe.cli("reconcile", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    previews = {p["customer_id"]: p for p in json.loads(result.stdout)["customers"]}
    assert {c for c, p in previews.items() if p["added"] or p["removed"]} == drift
    unseen = previews[world["unseen"]["customer_id"]]
    assert unseen["new"] is True
    assert unseen["added"] == [[world["unseen"]["id"], "role_client"]]
    assert all(p["calls"] >= 2 for p in previews.values())
    assert writes_since(pipe.kinde, start) == []
    assert drifted(pipe, world) == drift


def test_dry_run_with_another_plans_file_previews_the_mapping_change(pipe: OnCall, world: dict[str, Any]) -> None:
    other = pipe.tmp / "other.toml"
    other.write_text('[plans]\nplan_subscriber = ["role_client"]\n')
    start = len(pipe.kinde.calls())
    result = pipe.cli("reconcile", "--dry-run", "--no-discover", "--plans", str(other))
    assert result.exit_code == 0, result.output
    for user in world["kept"]:
        assert f"{user['customer_id']}: +role_client ({user['id']})" in result.stdout
    assert "Nothing was written." in result.stdout
    assert writes_since(pipe.kinde, start) == []


def one_drifted_cancellation(pipe: OnCall, world: dict[str, Any]) -> dict[str, Any]:
    drift = drifted(pipe, world)
    return next(u for u in world["cancelled"] if u["customer_id"] in drift)


def test_dry_run_of_one_customer_previews_only_that_customer(pipe: OnCall, world: dict[str, Any]) -> None:
    user = one_drifted_cancellation(pipe, world)
    result = pipe.cli("reconcile", "--dry-run", "--json", "--customer", user["customer_id"])
    assert result.exit_code == 0, result.output
    previews = json.loads(result.stdout)["customers"]
    assert [(p["customer_id"], p["removed"]) for p in previews] == [
        (user["customer_id"], [[user["id"], "role_subscriber"]])
    ]


def test_reconciling_one_customer_fixes_it_and_shows_the_change(pipe: OnCall, world: dict[str, Any]) -> None:
    user = one_drifted_cancellation(pipe, world)
    before = drifted(pipe, world)
    result = pipe.cli("reconcile", "--customer", user["customer_id"], "--timeout", "60s", *WHY)
    assert result.exit_code == 0, result.output
    audited = [
        e for e in pipe.cli_json("customers", "history", user["customer_id"])["entries"] if e["kind"] == "oncall"
    ]
    assert [(e["action"], e["scope"], e["reason"]) for e in audited] == [("reconcile", "customers", WHY[1])]
    assert f"{user['customer_id']}: -role_subscriber ({user['id']})" in result.stdout
    assert "checked 1 (newly discovered 0), drift found 1, fixed 1, failed 0" in result.stdout
    assert drifted(pipe, world) == before - {user["customer_id"]}  # nobody else was touched
    assert pipe.cli_json("status")["last_reconcile"] is None  # one customer is not a fleet sweep


def test_reconciling_an_unknown_customer_says_how_to_link_it(pipe: OnCall, world: dict[str, Any]) -> None:
    result = pipe.cli("reconcile", "--customer", "customer_ghost", "--no-discover", "--json", *WHY)
    assert result.exit_code == 1
    [verdict] = json.loads(result.stdout)["customers"]
    assert verdict["outcome"] == "failed"
    assert verdict["error"].startswith("customer_unresolved")
    assert "link it by hand" in verdict["error"]


def test_sweep_finds_and_fixes_every_drift(pipe: OnCall, world: dict[str, Any]) -> None:
    drift = drifted(pipe, world)
    result = pipe.cli("reconcile", "--json", "--timeout", "60s", *WHY)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["checked"] == CANCELLED + KEPT + 1
    assert summary["discovered"] == 1
    assert (summary["drift"], summary["fixed"], summary["failed"], summary["pending"]) == (len(drift), len(drift), 0, 0)
    assert drifted(pipe, world) == set()
    last = pipe.cli_json("status")["last_reconcile"]
    assert (last["source"], last["drift"], last["checked"]) == ("cli", len(drift), CANCELLED + KEPT + 1)


def test_second_sweep_finds_no_drift(pipe: OnCall, world: dict[str, Any]) -> None:
    result = pipe.cli("reconcile", "--no-discover", "--timeout", "60s", *WHY)
    assert result.exit_code == 0, result.output
    assert f"checked {CANCELLED + KEPT + 1} " in result.stdout
    assert "drift found 0, fixed 0, failed 0, still retrying 0." in result.stdout


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (("reconcile", "--plans", "other.toml"), 1, "--plans only previews"),
        (("reconcile", "--timeout", "soon"), 1, "not a duration"),
        (("reconcile", "--dry-run", "--plans", "/nonexistent/plans.toml"), 2, "not found"),
        (("reconcile", "--customer", "customer_x"), 1, "say why with --reason"),  # only a dry run needs none
    ],
)
def test_reconcile_bad_input(pipe: OnCall, args: tuple[str, ...], code: int, says: str) -> None:
    result = pipe.cli(*args)
    assert result.exit_code == code
    assert says in result.stderr
    assert "Traceback" not in result.output
