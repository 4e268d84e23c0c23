"""`rolesync customers`: on-call's link replays what was parked; show and unlink; bad input is one line."""

from __future__ import annotations

from typing import Any

import pytest

from common import keys
from tests.ops.conftest import OnCall, parked, parked_for_an_heir
from tests.procs import wait_until

pytestmark = pytest.mark.e2e
PIPE_DB = 4
WHY = ("--reason", "ticket 42: the account moved", "--by", "ada")  # every state change says who and why


def oncall_entries(pipe: OnCall, customer_id: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = pipe.cli_json("customers", "history", customer_id)["entries"]
    return [e for e in entries if e["kind"] == "oncall"]


def test_link_replays_parked_events_at_once(pipe: OnCall) -> None:
    """A plan for a customer whose user is gone is parked; linking it by hand to the new account converges it."""
    customer, heir = parked_for_an_heir(pipe)
    result = pipe.cli("customers", "link", customer, heir["id"], "--yes", *WHY)
    assert result.exit_code == 0, result.output
    assert "replayed" in result.stdout
    (audited,) = oncall_entries(pipe, customer)
    assert (audited["action"], audited["by"], audited["reason"]) == ("customers_link", "ada", WHY[1])
    assert audited["now"].startswith(f"user {heir['id']}")
    assert "oncall_action_recorded" in result.stderr  # and one structured log line
    # Events of the same plan change still inside the worker's 5 s link grace may park a moment
    # after the link; park re-reads the link and replays them at once, so the list empties.
    wait_until(lambda: parked(pipe, customer) == [], timeout=10, what="no event left parked")
    wait_until(lambda: pipe.kinde.user_roles(heir["id"]) == ["role_client"], timeout=30, what="the heir's role")
    # The pass records its state after its last role write: wait for it rather than race it.
    wait_until(lambda: pipe.cli_json("customers", "show", customer)["last_converged_at"], timeout=30, what="a pass")
    shown = pipe.cli_json("customers", "show", customer)
    assert shown["link"]["user_id"] == heir["id"]
    assert shown["link"]["source"] == "on_call"
    assert shown["last_converged_at"] is not None
    assert shown["desired_roles"] == ["role_client"]


def test_link_says_what_moves_and_takes_the_roles_from_the_old_user_to_the_new(pipe: OnCall) -> None:
    """A customer linked to the wrong account is moved by hand: the old account loses the paid role."""
    wrong = pipe.kinde.create_user(email="wrong@example.com")
    pipe.kinde.change_plan(wrong["customer_id"], "plan_subscriber")
    wait_until(lambda: pipe.kinde.user_roles(wrong["id"]) == ["role_subscriber"], timeout=30, what="first role")
    # The pass records what it granted just after writing the role; the preview reads that record.
    wait_until(lambda: pipe.cli_json("customers", "show", wrong["customer_id"])["desired_roles"], timeout=10,
               what="the pass recorded")  # fmt: skip
    right = pipe.kinde.create_user(email="right@example.com", with_customer=False)
    # Kinde's billing data still names the customer on `wrong`: a customer-index rebuild still running (the
    # previous test's parked events start one) would put that link back over the hand link. Let it finish.
    wait_until(lambda: pipe.redis().get(keys.REBUILD_CURSOR) is None, timeout=30, what="no rebuild running")

    declined = pipe.cli("customers", "link", wrong["customer_id"], right["id"], *WHY, input="n\n")
    assert declined.exit_code == 0, declined.output
    assert f"Customer {wrong['customer_id']} is linked to user {wrong['id']}" in declined.stdout
    assert f"Its roles (role_subscriber) leave user {wrong['id']}" in declined.stdout
    assert f"arrive at user {right['id']} in the B2C org." in declined.stdout  # looked up in Kinde first
    assert "Nothing linked." in declined.stdout
    assert pipe.cli_json("customers", "show", wrong["customer_id"])["link"]["user_id"] == wrong["id"]
    assert oncall_entries(pipe, wrong["customer_id"]) == []

    result = pipe.cli("customers", "link", wrong["customer_id"], right["id"], *WHY, input="y\n")

    assert result.exit_code == 0, result.output
    wait_until(lambda: pipe.kinde.user_roles(right["id"]) == ["role_subscriber"], timeout=30, what="moved role")
    wait_until(lambda: pipe.kinde.user_roles(wrong["id"]) == [], timeout=30, what="old account emptied")


def test_show_tells_where_a_learned_link_came_from(pipe: OnCall) -> None:
    user = pipe.kinde.create_user(email="learned@example.com")
    pipe.kinde.change_plan(user["customer_id"], "plan_client")
    wait_until(lambda: pipe.kinde.user_roles(user["id"]) == ["role_client"], timeout=30, what="role_client")
    wait_until(lambda: pipe.cli_json("customers", "show", user["customer_id"])["desired_roles"] == ["role_client"],
               timeout=10, what="state recorded")  # fmt: skip
    table = pipe.cli("customers", "show", user["customer_id"])
    assert table.exit_code == 0
    assert f"link: user {user['id']}" in table.stdout
    assert "desired roles: role_client" in table.stdout


def test_show_prints_a_failing_payment_and_paid_clears_it(pipe: OnCall) -> None:
    """A payment_succeeded Kinde sent but we never got: on-call records it and the customer is re-converged."""
    user = pipe.kinde.create_user(email="dunning@example.com")
    pipe.kinde.change_plan(user["customer_id"], "plan_client")
    wait_until(lambda: pipe.kinde.user_roles(user["id"]) == ["role_client"], timeout=30, what="role_client")
    pipe.kinde.send_event("customer.payment_failed", {"customer_id": user["customer_id"]})
    wait_until(lambda: (pipe.cli_json("customers", "show", user["customer_id"])["payment"] or {}).get("standing")
               == "failing", timeout=20, what="the failing standing")  # fmt: skip
    assert "payment: failing, as of an event" in pipe.cli("customers", "show", user["customer_id"]).stdout
    # The role is written before the pass records its end: wait for that record, or `before` may still be None.
    before = wait_until(lambda: pipe.cli_json("customers", "show", user["customer_id"])["last_converged_at"],
                        timeout=20, what="the payment_failed pass recorded")  # fmt: skip
    result = pipe.cli("customers", "paid", user["customer_id"], *WHY)
    assert result.exit_code == 0, result.output
    assert [e["action"] for e in oncall_entries(pipe, user["customer_id"])] == ["customers_paid"]
    assert "converge pass is queued" in result.stdout
    shown = pipe.cli_json("customers", "show", user["customer_id"])
    assert shown["payment"]["standing"] == "ok"
    wait_until(lambda: pipe.cli_json("customers", "show", user["customer_id"])["last_converged_at"] > before,
               timeout=20, what="the queued pass")  # fmt: skip


def test_b2b_link_then_unlink(pipe: OnCall) -> None:
    org = pipe.kinde.create_org(name="Acme", with_customer=False, send_webhook=False)
    linked = pipe.cli("customers", "link", "customer_acme", "--org", org["code"], "--yes", *WHY)
    assert linked.exit_code == 0, linked.output
    assert f"arrive at org {org['code']} (Acme) (B2B: every member)" in linked.stdout
    assert f"org {org['code']} (B2B)" in linked.stdout
    assert pipe.cli_json("customers", "show", "customer_acme")["link"]["kind"] == "org"
    unlinked = pipe.cli("customers", "unlink", "customer_acme", *WHY)
    assert unlinked.exit_code == 0
    assert f"was org {org['code']}" in unlinked.stdout
    assert [e["action"] for e in oncall_entries(pipe, "customer_acme")] == ["customers_unlink", "customers_link"]
    fleet = pipe.cli_json("audit")["entries"]
    assert [(e["action"], e["customers"]) for e in fleet[:2]] == [("customers_unlink", ["customer_acme"]),
                                                                  ("customers_link", ["customer_acme"])]  # fmt: skip
    again = pipe.cli("customers", "unlink", "customer_acme", *WHY)
    assert again.exit_code == 1
    assert "has no link" in again.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("customers", "link", "customer_x", "bob", *WHY), "not a Kinde user id"),
        (("customers", "link", "customer_x", *WHY), "give a USER_ID"),
        (("customers", "link", "customer x", "kp_1", *WHY), "holds spaces"),
        (("customers", "link", "customer_x", "kp_nobody", "--yes", *WHY), "Kinde has no user kp_nobody"),
        (("customers", "link", "customer_x", "--org", "org_nobody", "--yes", *WHY), "Kinde has no org org_nobody"),
        (("customers", "link", "customer_x", "kp_1", "--yes", "--reason", " "), "say why with --reason"),
        (("customers", "show", "customer_nobody"), "nothing is known about customer customer_nobody"),
        (("customers", "unlink", "customer_nobody", *WHY), "has no link"),
        (("customers", "paid", "customer_nobody", *WHY), "no link known for customer customer_nobody"),
    ],
)
def test_customers_bad_input_is_exit_1_and_one_line(pipe: OnCall, args: tuple[str, ...], says: str) -> None:
    result = pipe.cli(*args)
    assert result.exit_code == 1
    assert says in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args", [("link", "customer_x", "kp_1", "--yes"), ("unlink", "customer_x"), ("paid", "customer_x")]
)
def test_changing_a_customer_without_a_reason_is_refused(pipe: OnCall, args: tuple[str, ...]) -> None:
    result = pipe.cli("customers", *args)
    assert result.exit_code == 2
    assert "Missing option '--reason'" in result.stderr


def test_a_link_nobody_confirms_links_nothing(pipe: OnCall) -> None:
    """No terminal to answer (a script that forgot --yes): one line naming --yes, nothing changed."""
    user = pipe.kinde.create_user(email="unconfirmed@example.com", with_customer=False)
    result = pipe.cli("customers", "link", "customer_unconfirmed", user["id"], *WHY, input="")
    assert result.exit_code == 1
    assert "add --yes" in result.stderr
    assert pipe.cli("customers", "show", "customer_unconfirmed").exit_code == 1  # still nothing known
