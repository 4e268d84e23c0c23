"""`rolesync customers`: on-call's link replays what was parked; show and unlink; bad input is one line."""

from __future__ import annotations

from typing import Any

import pytest

from tests.ops.conftest import OnCall
from tests.procs import wait_until

pytestmark = pytest.mark.e2e
PIPE_DB = 4


def parked(pipe: OnCall, customer_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = pipe.cli_json("dlq", "list", "--customer", customer_id)["records"]
    return [r for r in found if r["reason"] == "customer_unresolved"]


def test_link_replays_parked_events_at_once(pipe: OnCall) -> None:
    """A plan for a customer whose user is gone is parked; linking it by hand to the new account converges it."""
    gone = pipe.kinde.create_user(email="gone@example.com", send_webhook=False)
    pipe.kinde.delete_user(gone["id"])
    customer = gone["customer_id"]
    heir = pipe.kinde.create_user(email="heir@example.com", with_customer=False)
    pipe.kinde.set_webhooks(variant="customer_id")  # billing events that name only the customer
    try:
        pipe.kinde.change_plan(customer, "plan_client")
        wait_until(lambda: parked(pipe, customer), timeout=30, what="the billing events parked")
    finally:
        pipe.kinde.set_webhooks(variant="mix")
    result = pipe.cli("customers", "link", customer, heir["id"])
    assert result.exit_code == 0, result.output
    assert "replayed" in result.stdout
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
    right = pipe.kinde.create_user(email="right@example.com", with_customer=False)

    result = pipe.cli("customers", "link", wrong["customer_id"], right["id"])

    assert result.exit_code == 0, result.output
    assert f"Moving customer {wrong['customer_id']} from user {wrong['id']}" in result.stdout
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
    before = pipe.cli_json("customers", "show", user["customer_id"])["last_converged_at"]
    result = pipe.cli("customers", "paid", user["customer_id"])
    assert result.exit_code == 0, result.output
    assert "converge pass is queued" in result.stdout
    shown = pipe.cli_json("customers", "show", user["customer_id"])
    assert shown["payment"]["standing"] == "ok"
    wait_until(lambda: pipe.cli_json("customers", "show", user["customer_id"])["last_converged_at"] > before,
               timeout=20, what="the queued pass")  # fmt: skip


def test_b2b_link_then_unlink(pipe: OnCall) -> None:
    org = pipe.kinde.create_org(name="Acme", with_customer=False, send_webhook=False)
    linked = pipe.cli("customers", "link", "customer_acme", "--org", org["code"])
    assert linked.exit_code == 0, linked.output
    assert f"org {org['code']} (B2B)" in linked.stdout
    assert pipe.cli_json("customers", "show", "customer_acme")["link"]["kind"] == "org"
    unlinked = pipe.cli("customers", "unlink", "customer_acme")
    assert unlinked.exit_code == 0
    assert f"was org {org['code']}" in unlinked.stdout
    again = pipe.cli("customers", "unlink", "customer_acme")
    assert again.exit_code == 1
    assert "has no link" in again.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("customers", "link", "customer_x", "bob"), "not a Kinde user id"),
        (("customers", "link", "customer_x"), "give a USER_ID"),
        (("customers", "link", "customer x", "kp_1"), "holds spaces"),
        (("customers", "show", "customer_nobody"), "nothing is known about customer customer_nobody"),
        (("customers", "unlink", "customer_nobody"), "has no link"),
        (("customers", "paid", "customer_nobody"), "no link known for customer customer_nobody"),
    ],
)
def test_customers_bad_input_is_exit_1_and_one_line(pipe: OnCall, args: tuple[str, ...], says: str) -> None:
    result = pipe.cli(*args)
    assert result.exit_code == 1
    assert says in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
