"""`rolesync adopt --from reconcile`: the managed roles held today that no plan grants, found by a reconcile dry
run made in the command's own process (no shadow mode, no worker), against the sandbox over HTTP and a real Redis.

Same output as from a shadow run: counts per role, one CSV row per (user, role), `--grant` keeps them as hand
grants; Kinde gets no role write either way. Failed before `--from`: adopt read only shadow mode's record,
empty here, and listed nobody.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from common import keys
from sandbox.config import rolesync_env
from tests.ops.conftest import run_cli
from tests.sandbox_fixture import RunningSandbox, running_sandbox

WHY = ("--reason", "adopted 2026-12", "--by", "ada")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    with running_sandbox(tmp_path_factory.mktemp("adopt-sandbox")) as running:
        yield running


def role_writes(sandbox: RunningSandbox) -> list[dict[str, Any]]:
    return [c for c in sandbox.client.calls() if c["method"] in ("POST", "DELETE") and "/roles" in c["path"]
            and c["path"].startswith("/api/v1/organizations")]  # fmt: skip


def tenant(sandbox: RunningSandbox) -> list[str]:
    """Two paying users holding their plan's role, two holding role_client by hand, one paying for
    role_subscriber and holding role_client by hand besides: the ids holding role_client by hand."""
    kinde = sandbox.client
    kinde.reset()
    by_hand = []
    for n, (plan, roles) in enumerate([("plan_subscriber", ["role_subscriber"]), ("plan_client", ["role_client"]),
                                       ("", ["role_client"]), ("", ["role_client"]),
                                       ("plan_subscriber", ["role_subscriber", "role_client"])]):  # fmt: skip
        user = kinde.create_user(email=f"u{n}@example.com", send_webhook=False)
        for role in roles:
            kinde.grant_role(user["id"], role)
        if plan:
            kinde.change_plan(user["customer_id"], plan)
        if "role_client" in roles and plan != "plan_client":
            by_hand.append(user["id"])
    return by_hand


def test_adopt_from_a_reconcile_dry_run_lists_then_grants_the_roles_no_plan_gives(
    sandbox: RunningSandbox, redis_url: str, tmp_path: Path
) -> None:
    by_hand = tenant(sandbox)
    env = rolesync_env(redis_url, sandbox.url, tmp_path)

    listed = run_cli(env, "adopt", "--from", "reconcile", "--csv", str(tmp_path / "list.csv"))
    assert listed.exit_code == 0, listed.output
    assert "3 user(s), roles held today that no plan grants" in listed.stdout
    assert "  role_client: 3\n" in listed.stdout
    with (tmp_path / "list.csv").open() as rows:
        assert sorted((r["user_id"], r["role"], r["action"]) for r in csv.DictReader(rows)) == sorted(
            (u, "role_client", "listed") for u in by_hand)  # fmt: skip

    granted = run_cli(env, "adopt", "--from", "reconcile", "--grant", "--json", "--csv", str(tmp_path / "g.csv"), *WHY)
    assert granted.exit_code == 0, granted.output
    assert json.loads(granted.stdout)["per_role"] == {"role_client": 3}
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    held = {u: [json.loads(str(client.get(keys.hand_grant(g)))) for g in client.smembers(keys.user_hand_grants(u))]
            for u in by_hand}  # fmt: skip
    client.close()
    assert {u: [(g["roles"], g["reason"]) for g in found] for u, found in held.items()} == {
        u: [(["role_client"], "adopted 2026-12")] for u in by_hand}  # fmt: skip

    again = run_cli(env, "adopt", "--from", "reconcile", "--json", "--csv", str(tmp_path / "again.csv"))
    assert json.loads(again.stdout)["targets"] == 0  # the grants now cover what was held by hand
    assert role_writes(sandbox) == []  # nothing written to Kinde by any of it
