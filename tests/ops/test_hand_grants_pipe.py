"""`rolesync grants` on the whole pipe (sandbox Kinde, real worker with its schedule): a hand grant covers its
user like a customer, survives an upgrade, and ends by itself at `--until` within one scheduled tick."""

from __future__ import annotations

import time

import pytest

from tests.ops.conftest import OnCall
from tests.procs import wait_until

pytestmark = pytest.mark.e2e
PIPE_DB = 7
WHY = ("--reason", "partner programme", "--by", "ada")


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def test_a_grant_gives_its_role_at_once_and_an_upgrade_keeps_it(pipe: OnCall) -> None:
    user = pipe.kinde.create_user(email="partner@example.com")
    wait_until(pipe.settled, timeout=30, what="user.created handled: its customer linked")

    asked = time.monotonic()
    added = pipe.cli("grants", "add", "--user", user["id"], "--role", "role_client", *WHY)
    assert added.exit_code == 0, added.output
    wait_until(lambda: pipe.kinde.user_roles(user["id"]) == ["role_client"], timeout=30,
               what="the granted role, with no event")  # fmt: skip
    print(f"\ngrants add to the role in Kinde: {time.monotonic() - asked:.2f} s")

    pipe.kinde.change_plan(user["customer_id"], "plan_subscriber")  # an upgrade whose plan does not give role_client
    wait_until(lambda: pipe.kinde.user_roles(user["id"]) == ["role_client", "role_subscriber"], timeout=30,
               what="the plan's role beside the grant's")  # fmt: skip
    wait_until(pipe.settled, timeout=30, what="the upgrade's passes done")
    assert pipe.kinde.user_roles(user["id"]) == ["role_client", "role_subscriber"]  # the union: the grant's role kept
    pipe.kinde.change_plan(user["customer_id"], "plan_client")  # the plan now gives role_client; subscriber goes
    wait_until(lambda: pipe.kinde.user_roles(user["id"]) == ["role_client"], timeout=30, what="the upgrade")
    grant_id = pipe.cli_json("grants", "list", "--user", user["id"])["grants"][0]["grant_id"]
    assert pipe.cli("grants", "remove", grant_id, *WHY).exit_code == 0
    pipe.kinde.change_plan(user["customer_id"], "plan_subscriber")  # a downgrade: the grant no longer holds it
    wait_until(lambda: pipe.kinde.user_roles(user["id"]) == ["role_subscriber"], timeout=30, what="the downgrade")
    history = pipe.cli_json("customers", "history", user["customer_id"])["entries"]
    assert [e["action"] for e in history if e["kind"] == "oncall"] == ["grants_remove", "grants_add"]


def test_a_grant_with_until_ends_by_itself_within_one_scheduled_tick(pipe: OnCall) -> None:
    user = pipe.kinde.create_user(email="trial@example.com")
    until = float(int(time.time()) + 8)  # whole seconds, as --until says it
    assert pipe.cli("grants", "add", "--user", user["id"], "--role", "role_client", "--until", iso(until),
                    *WHY).exit_code == 0  # fmt: skip
    wait_until(lambda: pipe.kinde.user_roles(user["id"]) == ["role_client"], timeout=30, what="the granted role")

    wait_until(lambda: pipe.kinde.user_roles(user["id"]) == [], timeout=60, what="the role gone at --until")

    ended_after = time.time() - until
    assert 0 <= ended_after < 30, f"the grant ended {ended_after:.1f} s after its --until"
    print(f"\nthe role left {ended_after:.1f} s after --until")
    assert all(g["user_id"] != user["id"] for g in pipe.cli_json("grants", "list")["grants"])
    assert "grants_expired" in [e["action"] for e in pipe.cli_json("audit")["entries"]]


def test_an_unmanaged_role_is_refused_in_one_line_and_nothing_is_stored(pipe: OnCall) -> None:
    refused = pipe.cli("grants", "add", "--user", "kp_someone", "--role", "role_admin", *WHY)

    assert refused.exit_code == 1
    assert "role_admin are not managed" in refused.stderr
    assert "Traceback" not in refused.output
    assert all(g["user_id"] != "kp_someone" for g in pipe.cli_json("grants", "list")["grants"])


def test_a_grant_to_a_user_kinde_lacks_or_outside_the_org_is_refused_in_one_line_and_nothing_is_stored(
    pipe: OnCall,
) -> None:
    user = pipe.kinde.create_user(email="outsider@example.com", send_webhook=False)
    org = pipe.kinde.create_org(name="Acme", send_webhook=False)

    nobody = pipe.cli("grants", "add", "--user", "kp_nobody", "--role", "role_client", *WHY)
    outside = pipe.cli("grants", "add", "--user", user["id"], "--org", org["code"], "--role", "role_client", *WHY)

    assert (nobody.exit_code, outside.exit_code) == (1, 1)
    assert "no user kp_nobody: Kinde has no such user; nothing was stored" in nobody.stderr
    assert f"user {user['id']} is not a member of org {org['code']}" in outside.stderr
    assert "Traceback" not in nobody.output + outside.output
    held = {g["user_id"] for g in pipe.cli_json("grants", "list")["grants"]}
    assert not held & {"kp_nobody", user["id"]}
    pipe.kinde.add_user_to_org(user["id"], org["code"])  # once a member, the same grant is taken
    assert pipe.cli("grants", "add", "--user", user["id"], "--org", org["code"], "--role", "role_client",
                    *WHY).exit_code == 0  # fmt: skip
