"""The demo's plan-selection guard step: a downgrade refused with reasons, a member leaves, the downgrade goes.

The sandbox runs its plan-selection hook the way Kinde runs the workflow we ship (kinde/), pointed at
`rolesync api`'s `POST /v1/plan-selection`.
"""

from __future__ import annotations

import click

from launch.processes import wait_until
from sandbox.client import SandboxClient, SandboxError

GUARD_PATH = "/v1/plan-selection"
SECRET_HEADER = "x-rolesync-workflow-secret"  # noqa: S105 - a header name, not a secret


def refused_downgrade(kinde: SandboxClient, api_url: str, secret: str, timeout: float) -> None:
    click.echo("\n5. Acme (an organization, 2 members) buys the Client plan, then tries the Subscriber plan (1 seat).")
    org = kinde.create_org(name="Acme")
    bob = kinde.create_user(email="bob@acme.example", org_code=org["code"], with_customer=False)["id"]
    cy = kinde.create_user(email="cy@acme.example", org_code=org["code"], with_customer=False)["id"]
    kinde.change_plan(org["customer_id"], "plan_client")
    _show_roles(kinde, "Bob", bob, org["code"], ["role_client"], timeout)
    kinde.set_plan_selection_hook(f"{api_url}{GUARD_PATH}", secret)
    try:
        _downgrade(kinde, org["customer_id"], cy, org["code"], timeout)
    finally:
        kinde.clear_plan_selection_hook()
    _show_roles(kinde, "Bob", bob, org["code"], ["role_subscriber"], timeout)


def _downgrade(kinde: SandboxClient, customer_id: str, leaver: str, org_code: str, timeout: float) -> None:
    refusal = _try_downgrade(kinde, customer_id)
    if refusal is None:
        raise TimeoutError("the guard allowed a downgrade to 1 seat for 2 members: expected a refusal")
    click.echo(f"   Kinde refuses the change: {refusal.message}")
    for reason in refusal.reasons:
        click.echo(f"     - {reason}")
    click.echo("   Cy leaves Acme; Acme tries the Subscriber plan again.")
    kinde.remove_user_from_org(leaver, org_code, send_webhook=True)
    # rolesync learns of the leaver from the webhook; until then the guard still counts Cy.
    allowed = lambda: _try_downgrade(kinde, customer_id) is None  # noqa: E731 - a one-line poll
    wait_until(allowed, timeout=timeout, interval=0.5, what="the guard to allow the downgrade")
    click.echo("   Allowed: Acme is on the Subscriber plan.")


def _try_downgrade(kinde: SandboxClient, customer_id: str) -> SandboxError | None:
    try:
        kinde.change_plan(customer_id, "plan_subscriber")
    except SandboxError as exc:
        if exc.code != "PLAN_SELECTION_DENIED":
            raise
        return exc
    return None


def _show_roles(kinde: SandboxClient, who: str, user_id: str, org: str, expected: list[str], timeout: float) -> None:
    def held() -> list[str]:
        return sorted(kinde.user_roles(user_id, org))

    wait_until(lambda: held() == sorted(expected), timeout=timeout, what=f"{who}'s roles {expected}")
    click.echo(f"   Kinde now says {who} holds in Acme: {', '.join(held())}.")
