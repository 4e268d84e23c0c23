"""One user's plan changes flow end to end: signed webhook → ingest → queue → worker → Kinde roles."""

from __future__ import annotations

import pytest

from launch.pipe import Pipe
from tests.procs import wait_until

pytestmark = pytest.mark.e2e


def roles_become(pipe: Pipe, user_id: str, expected: list[str]) -> None:
    wait_until(lambda: pipe.kinde.user_roles(user_id) == sorted(expected), timeout=20, what=f"roles {expected}")


def test_role_follows_sign_up_upgrade_and_cancel(pipe: Pipe) -> None:
    """subscriber → client → cancelled leaves the user with the plan's role at each step, then none."""
    user = pipe.kinde.create_user(email="flow@example.com")
    pipe.kinde.change_plan(user["customer_id"], "plan_subscriber")
    roles_become(pipe, user["id"], ["role_subscriber"])
    pipe.kinde.change_plan(user["customer_id"], "plan_client")
    roles_become(pipe, user["id"], ["role_client"])
    pipe.kinde.cancel_plan(user["customer_id"])
    roles_become(pipe, user["id"], [])


def test_hand_given_role_survives_plan_changes(pipe: Pipe) -> None:
    """A role not named in plans.toml (an admin role) is never added or removed by the service."""
    user = pipe.kinde.create_user(email="admin@example.com")
    pipe.kinde.grant_role(user["id"], "role_admin")
    pipe.kinde.change_plan(user["customer_id"], "plan_client")
    roles_become(pipe, user["id"], ["role_admin", "role_client"])
    pipe.kinde.cancel_plan(user["customer_id"])
    roles_become(pipe, user["id"], ["role_admin"])


def test_plan_bought_before_the_user_event_arrives_still_converges(pipe: Pipe) -> None:
    """If the billing event comes first, the customer is resolved anyway (link learned or index rebuilt)."""
    user = pipe.kinde.create_user(email="early@example.com", send_webhook=False)
    pipe.kinde.change_plan(user["customer_id"], "plan_subscriber")
    roles_become(pipe, user["id"], ["role_subscriber"])
