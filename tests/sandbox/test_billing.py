"""Billing through the Management API: change plan by POST, entitlements, B2B org customers."""

from __future__ import annotations

import httpx

from tests.procs import wait_until
from tests.sandbox.receiver import Receiver
from tests.sandbox_fixture import RunningSandbox


def test_post_agreement_changes_plan_and_fires_the_events(
    sandbox: RunningSandbox, kinde: httpx.Client, receiver: Receiver
) -> None:
    customer = sandbox.client.create_user(send_webhook=False)["customer_id"]
    sandbox.client.change_plan(customer, "plan_subscriber")

    body = {"customer_id": customer, "plan_code": "plan_client", "is_invoice_now": True, "is_prorate": True}
    assert kinde.post("/api/v1/billing/agreements", json=body).json()["code"] == "OK"

    agreements = kinde.get("/api/v1/billing/agreements", params={"customer_id": customer}).json()["agreements"]
    assert [a["plan_code"] for a in agreements if a["expires_on"] is None] == ["plan_client"]
    wait_until(lambda: len(receiver.snapshot()) == 5, timeout=10, what="2 + 3 plan events")


def test_post_agreement_for_an_unknown_customer_is_customer_not_found(kinde: httpx.Client) -> None:
    response = kinde.post("/api/v1/billing/agreements", json={"customer_id": "customer_nope", "plan_code": "p"})
    assert (response.status_code, response.json()["errors"][0]["code"]) == (404, "CUSTOMER_NOT_FOUND")


def test_post_agreement_without_plan_is_a_clear_400(sandbox: RunningSandbox, kinde: httpx.Client) -> None:
    customer = sandbox.client.create_user(send_webhook=False)["customer_id"]
    response = kinde.post("/api/v1/billing/agreements", json={"customer_id": customer})
    assert (response.status_code, response.json()["errors"][0]["code"]) == (400, "PLAN_CODE_REQUIRED")


def test_entitlements_follow_the_active_plan(sandbox: RunningSandbox, kinde: httpx.Client) -> None:
    sandbox.client.define_plan("plan_team", {"seats": 5, "projects": 10})
    customer = sandbox.client.create_user(send_webhook=False)["customer_id"]
    sandbox.client.change_plan(customer, "plan_team")

    body = kinde.get("/api/v1/billing/entitlements", params={"customer_id": customer, "expand": "plans"}).json()
    limits = {e["feature_code"]: e["entitlement_limit_max"] for e in body["entitlements"]}
    assert limits == {"seats": 5, "projects": 10}
    assert [p["code"] for p in body["plans"]] == ["plan_team"]
    assert body["has_more"] is False


def test_an_org_customer_is_read_as_billing_customer_id(sandbox: RunningSandbox, kinde: httpx.Client) -> None:
    org = sandbox.client.create_org(name="Acme", send_webhook=False)
    agreement = sandbox.client.change_plan(org["customer_id"], "plan_team")["agreement_id"]

    body = kinde.get("/api/v1/organization", params={"code": org["code"], "expand": "billing"}).json()
    assert body["code"] == org["code"]
    assert body["is_default"] is False
    assert body["billing"] == {
        "billing_customer_id": org["customer_id"],
        "agreements": [{"plan_code": "plan_team", "agreement_id": agreement}],
    }


def test_default_org_is_listed_with_is_default(kinde: httpx.Client) -> None:
    orgs = kinde.get("/api/v1/organizations").json()["organizations"]
    assert [o["code"] for o in orgs if o["is_default"]] == ["org_default"]


def test_org_users_can_be_filtered_by_role_key(sandbox: RunningSandbox, kinde: httpx.Client) -> None:
    client_user, other = sandbox.client.create_user()["id"], sandbox.client.create_user()["id"]
    sandbox.client.grant_role(client_user, "role_client")
    rows = kinde.get("/api/v1/organizations/org_default/users", params={"roles": "role_client"}).json()
    assert [(u["id"], u["roles"]) for u in rows["organization_users"]] == [(client_user, ["role_client"])]
    assert other != client_user


def test_a_bulk_seed_can_start_every_customer_on_a_plan_holding_its_role(
    sandbox: RunningSandbox, kinde: httpx.Client
) -> None:
    sandbox.client.seed_bulk(users=3, plan="plan_client", roles=["role_client"])
    users = kinde.get("/api/v1/users", params={"expand": "billing"}).json()["users"]
    assert len(users) == 3
    for user in users:
        customer = user["billing"]["customer_id"]
        agreements = kinde.get("/api/v1/billing/agreements", params={"customer_id": customer}).json()["agreements"]
        assert [a["plan_code"] for a in agreements if a["expires_on"] is None] == ["plan_client"]
        assert sandbox.client.user_roles(user["id"]) == ["role_client"]
