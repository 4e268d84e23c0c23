"""Control calls the access model needs: org deletion, membership webhooks, payments, lost events, state."""

from __future__ import annotations

import pytest

from sandbox.client import SandboxError
from tests.procs import wait_until
from tests.sandbox.receiver import Receiver
from tests.sandbox.test_delivery import delivered_types
from tests.sandbox_fixture import RunningSandbox


def test_org_deletion_membership_and_payment_each_send_their_event(sandbox: RunningSandbox, receiver: Receiver) -> None:
    kinde = sandbox.client
    org = kinde.create_org(name="Acme", send_webhook=False)
    user = kinde.create_user(org_code=org["code"], send_webhook=False)
    kinde.add_user_to_org(user["id"], "org_default", send_webhook=True)
    kinde.payment(user["customer_id"], "failed")
    kinde.delete_org(org["code"])
    claims = {c["type"]: c for c in delivered_types(sandbox, receiver, 3)}
    assert sorted(claims) == ["customer.payment_failed", "organization.deleted", "user.updated"]
    assert [o["code"] for o in claims["user.updated"]["data"]["user"]["organizations"]] == [org["code"], "org_default"]
    state = kinde.state()
    assert org["code"] not in {o["code"] for o in state["orgs"]}
    assert next(u for u in state["users"] if u["id"] == user["id"])["org_codes"] == ["org_default"]


def test_the_default_org_cannot_be_deleted(sandbox: RunningSandbox) -> None:
    with pytest.raises(SandboxError) as refused:
        sandbox.client.delete_org("org_default")
    assert refused.value.code == "DEFAULT_ORGANIZATION"


def test_lost_events_never_reach_the_endpoint_and_are_counted(sandbox: RunningSandbox, receiver: Receiver) -> None:
    kinde = sandbox.client
    kinde.set_webhooks(lose_rate=1.0)
    kinde.create_user()
    kinde.set_webhooks(lose_rate=0.0)
    kinde.create_user()
    wait_until(lambda: kinde.pending_deliveries() == 0, timeout=10, what="deliveries done")
    assert kinde.lost_deliveries() == 1
    assert len(receiver.snapshot()) == 1
