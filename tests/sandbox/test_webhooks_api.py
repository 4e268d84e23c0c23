"""`/api/v1/webhooks`: register, list, update, delete; a registered endpoint receives its event types."""

from __future__ import annotations

import httpx

from tests.procs import wait_until
from tests.sandbox.receiver import running_receiver
from tests.sandbox_fixture import RunningSandbox


def test_registered_webhook_is_listed_updated_and_deleted(kinde: httpx.Client) -> None:
    body = {"endpoint": "https://example.test/hook", "event_types": ["user.created"], "name": "rolesync"}
    created = kinde.post("/api/v1/webhooks", json=body).json()["webhook"]
    assert created["endpoint"] == "https://example.test/hook"

    patch = {"event_types": ["customer.plan_changed"], "description": "plans"}
    assert kinde.patch(f"/api/v1/webhooks/{created['id']}", json=patch).json()["code"] == "OK"
    (listed,) = kinde.get("/api/v1/webhooks").json()["webhooks"]
    assert (listed["event_types"], listed["description"]) == (["customer.plan_changed"], "plans")

    assert kinde.delete(f"/api/v1/webhooks/{created['id']}").status_code == 200
    assert kinde.get("/api/v1/webhooks").json()["webhooks"] == []


def test_webhook_errors_are_clear(kinde: httpx.Client) -> None:
    missing = kinde.post("/api/v1/webhooks", json={"event_types": [], "name": "x"})
    assert missing.json()["errors"][0]["code"] == "ENDPOINT_REQUIRED"
    unknown = kinde.patch("/api/v1/webhooks/webhook_nope", json={"name": "y"})
    assert (unknown.status_code, unknown.json()["errors"][0]["code"]) == (404, "WEBHOOK_NOT_FOUND")


def test_a_registered_endpoint_gets_only_its_event_types(sandbox: RunningSandbox, kinde: httpx.Client) -> None:
    with running_receiver() as receiver:
        body = {"endpoint": receiver.url, "event_types": ["customer.plan_assigned"], "name": "plans only"}
        kinde.post("/api/v1/webhooks", json=body)
        customer = sandbox.client.create_user()["customer_id"]
        sandbox.client.change_plan(customer, "plan_client")

        wait_until(lambda: sandbox.client.pending_deliveries() == 0, timeout=10, what="deliveries to finish")
        assert len(receiver.snapshot()) == 1
