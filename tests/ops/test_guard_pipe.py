"""The guard end to end: sandbox Kinde, ingest, a real Dramatiq worker and `rolesync api`, real Redis.

An org pays (organization.created), members join (user.created); the org's pass counts them. With that
count gone (as for an org no pass has listed yet), a decision finds none and asks the worker, whose
`refresh_org_members` actor lists the members from the sandbox; later decisions refuse with the real
count, and a member who leaves (user.updated) lets the move through.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.ops.conftest import Pipe
from tests.procs import Proc, free_port, http_ok, rolesync, wait_until

PIPE_DB = 12
SECRET = "workflow-Xq7vR2mK9pLs4Tz8Wn3cYb6H"
PLANS = """[plans]
plan_subscriber = ["role_subscriber"]
plan_client = ["role_client"]
free = []
[limits.free]
org_members = 2
[guard]
on_error = "deny"
member_wait_s = 2.0
"""


@pytest.fixture(scope="module")
def api(pipe: Pipe) -> Iterator[httpx.Client]:
    (pipe.tmp / "guard-plans.toml").write_text(PLANS)
    env = {**pipe.env, "ROLESYNC_API_KEYS": "ops:ops-Jt5wQ9zL2xVk7Rm4Pc8Hn3Fb", "ROLESYNC_WORKFLOW_SECRET": SECRET,
           "ROLESYNC_PLANS": str(pipe.tmp / "guard-plans.toml")}  # fmt: skip
    port = free_port()
    proc = Proc("api", rolesync("api", "--port", str(port)), env, pipe.tmp)
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/readyz"), timeout=30, what="the API ready")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30.0) as client:
            yield client
    finally:
        proc.stop()


def ask(api: httpx.Client, user_id: str, org_code: str) -> dict[str, Any]:
    body = {"billing": {"currentPlanCode": "plan_client", "requestedPlanCode": "free"}, "user": {"id": user_id},
            "organization": {"code": org_code}}  # fmt: skip
    answer = api.post("/v1/plan-selection", json=body, headers={"x-rolesync-workflow-secret": SECRET})
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def test_the_worker_counts_an_orgs_members_from_kinde_and_user_events_keep_the_count(
    pipe: Pipe, api: httpx.Client
) -> None:
    org = pipe.kinde.create_org(name="guarded")
    users = [pipe.kinde.create_user(org_code=org["code"], with_customer=False)["id"] for _ in range(3)]
    store, counted = pipe.redis(), f"rolesync:org-members-read:{org['code']}"
    wait_until(lambda: store.get(f"rolesync:link:{org['customer_id']}"), timeout=60, what="the org's link")
    wait_until(lambda: store.get(counted), timeout=60, what="the org's pass to count its members")
    store.delete(counted)
    missed_at = time.time()
    refused = ["reduce org_members to 2 or fewer (now 3)"]
    # A decision before the worker's listing lands is on_error's (deny, no reasons); the next ones are counted.
    wait_until(lambda: ask(api, users[0], org["code"])["reasons"] == refused, timeout=60, what="a counted refusal")
    path = f"/api/v1/organizations/{org['code']}/users"
    assert [c for c in pipe.kinde.calls() if c["path"] == path and c["time"] >= missed_at], "a listing after the miss"
    pipe.kinde.remove_user_from_org(users[2], org["code"], send_webhook=True)
    wait_until(lambda: ask(api, users[0], org["code"])["allow"], timeout=60, what="the move allowed after a leave")
