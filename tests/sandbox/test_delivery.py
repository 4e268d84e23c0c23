"""Webhook delivery: signed RS256 JWTs over real HTTP, retried on Kinde's (time-scaled) schedule."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from typing import Any

import jwt
import pytest

from sandbox.delivery import retry_delays_s
from tests.procs import wait_until
from tests.sandbox.receiver import Receiver
from tests.sandbox_fixture import RunningSandbox


def verified_claims(sandbox: RunningSandbox, token: str) -> dict[str, Any]:
    keys = jwt.PyJWKClient(f"{sandbox.url}/.well-known/jwks.json", cache_jwk_set=False)
    claims: dict[str, Any] = jwt.decode(token, keys.get_signing_key_from_jwt(token), algorithms=["RS256"])
    return claims


def delivered_types(sandbox: RunningSandbox, receiver: Receiver, count: int) -> list[dict[str, Any]]:
    wait_until(lambda: len(receiver.snapshot()) >= count, timeout=10, what=f"{count} deliveries")
    return [verified_claims(sandbox, r.body) for r in receiver.snapshot()]


def test_user_created_is_a_signed_jwt_with_kinde_envelope(sandbox: RunningSandbox, receiver: Receiver) -> None:
    user = sandbox.client.create_user(email="grace@example.test")

    (claims,) = delivered_types(sandbox, receiver, 1)
    (received,) = receiver.snapshot()
    assert received.headers["content-type"] == "application/jwt"
    assert received.headers["webhook-id"]
    assert jwt.get_unverified_header(received.body)["alg"] == "RS256"
    assert claims["type"] == "user.created"
    assert claims["event_id"].startswith("event_")
    assert claims["timestamp"].endswith("+00:00")
    assert claims["data"]["user"]["id"] == user["id"]
    assert claims["data"]["user"]["organizations"][0]["code"] == "org_default"


def test_first_plan_emits_agreement_created_and_plan_assigned(sandbox: RunningSandbox, receiver: Receiver) -> None:
    customer = sandbox.client.create_user(send_webhook=False)["customer_id"]
    sandbox.client.change_plan(customer, "plan_subscriber")

    types = sorted(c["type"] for c in delivered_types(sandbox, receiver, 2))
    assert types == ["customer.agreement_created", "customer.plan_assigned"]


def test_plan_change_emits_cancelled_created_and_changed(sandbox: RunningSandbox, receiver: Receiver) -> None:
    customer = sandbox.client.create_user(send_webhook=False)["customer_id"]
    sandbox.client.change_plan(customer, "plan_subscriber")
    sandbox.client.change_plan(customer, "plan_client")

    types = Counter(c["type"] for c in delivered_types(sandbox, receiver, 5))
    assert types == {
        "customer.plan_assigned": 1,
        "customer.agreement_created": 2,
        "customer.agreement_cancelled": 1,
        "customer.plan_changed": 1,
    }


def customer_of(data: dict[str, Any]) -> str:
    found: str = data.get("customer_id") or data["customer"]["id"]
    return found


@pytest.mark.parametrize("variant", ["customer_id", "customer_object", "flat", "with_owner"])
def test_each_billing_variant_names_the_customer_and_plan(
    sandbox: RunningSandbox, receiver: Receiver, variant: str
) -> None:
    sandbox.client.set_webhooks(variant=variant)
    user = sandbox.client.create_user(send_webhook=False)
    sandbox.client.change_plan(user["customer_id"], "plan_client")

    for claims in delivered_types(sandbox, receiver, 2):
        data = claims["data"]
        assert customer_of(data) == user["customer_id"]
        assert (data.get("plan") or {}).get("code", data.get("plan_code")) == "plan_client"
        assert ("user_id" in data) == (variant == "with_owner")


def test_mix_uses_more_than_one_billing_shape(sandbox: RunningSandbox, receiver: Receiver) -> None:
    customer = sandbox.client.create_user(send_webhook=False)["customer_id"]
    for plan in ("a", "b", "c", "d"):
        sandbox.client.change_plan(customer, plan)

    shapes = {json.dumps(sorted(c["data"])) for c in delivered_types(sandbox, receiver, 11)}
    assert len(shapes) > 1


def test_non_200_is_redelivered_with_the_same_webhook_id_until_a_200(
    sandbox: RunningSandbox, receiver: Receiver
) -> None:
    receiver.statuses = [500, 503, 404]
    sent = sandbox.client.send_event("customer.payment_failed", {"customer_id": "customer_x"})

    wait_until(lambda: sandbox.client.pending_deliveries() == 0, timeout=10, what="the delivery to finish")
    attempts = [d for d in sandbox.client.deliveries() if d["event_id"] == sent["event_id"]]
    assert [a["status"] for a in attempts] == [500, 503, 404, 200]
    assert {r.headers["webhook-id"] for r in receiver.snapshot()} == {sent["webhook_id"]}
    assert len({r.body for r in receiver.snapshot()}) == 1


def test_retry_waits_follow_kindes_schedule_divided_by_time_scale(sandbox: RunningSandbox, receiver: Receiver) -> None:
    receiver.statuses = [500, 500, 500]
    sandbox.client.send_event("customer.payment_failed", {"customer_id": "customer_x"})

    wait_until(lambda: len(receiver.snapshot()) == 4, timeout=10, what="four attempts")
    times = [r.time for r in receiver.snapshot()]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    expected = [d / 1000.0 for d in retry_delays_s()[1:4]]  # the fixture runs at time_scale 1000
    for gap, want in zip(gaps, expected, strict=True):
        assert want * 0.9 <= gap <= want + 0.25, (gaps, expected)


def test_duplicates_repeat_a_delivery_with_the_same_webhook_id(sandbox: RunningSandbox, receiver: Receiver) -> None:
    sandbox.client.set_webhooks(duplicate_rate=1.0)
    sent = sandbox.client.send_event("user.updated", {"user": {"id": "kp_x"}})

    wait_until(lambda: len(receiver.snapshot()) == 2, timeout=10, what="the duplicate")
    assert {r.headers["webhook-id"] for r in receiver.snapshot()} == {sent["webhook_id"]}


def test_paused_deliveries_stay_pending_until_resumed(sandbox: RunningSandbox, receiver: Receiver) -> None:
    sandbox.client.set_webhooks(paused=True)
    sandbox.client.create_user()
    assert sandbox.client.pending_deliveries() == 1
    assert receiver.snapshot() == []

    sandbox.client.set_webhooks(paused=False)
    wait_until(lambda: sandbox.client.pending_deliveries() == 0, timeout=10, what="the paused delivery")
    assert len(receiver.snapshot()) == 1


def test_a_dropped_attempt_is_retried_on_schedule(sandbox: RunningSandbox, receiver: Receiver) -> None:
    sandbox.client.set_webhooks(drop_rate=1.0)
    sent = sandbox.client.send_event("user.updated", {"user": {"id": "kp_x"}})
    wait_until(lambda: sandbox.client.deliveries(), timeout=10, what="the dropped attempt")
    sandbox.client.set_webhooks(drop_rate=0.0)

    wait_until(lambda: sandbox.client.pending_deliveries() == 0, timeout=10, what="the retry")
    statuses = [d["status"] for d in sandbox.client.deliveries() if d["event_id"] == sent["event_id"]]
    assert statuses[0] == 0
    assert statuses[-1] == 200


def test_shuffle_reorders_deliveries_and_loses_none(sandbox: RunningSandbox, receiver: Receiver) -> None:
    sandbox.client.set_webhooks(shuffle=True, delay_ms=300)
    created = [sandbox.client.create_user()["id"] for _ in range(8)]

    claims = delivered_types(sandbox, receiver, 8)
    arrived = [c["data"]["user"]["id"] for c in claims]
    assert sorted(arrived) == sorted(created)
    assert arrived != created  # 8 random delays up to 300 ms: same order has odds 1 in 40320
