"""Metered usage and the customer timeline, recorded by the worker over real Redis."""

from __future__ import annotations

import json
from typing import Any

import pytest

from common import keys
from common.customers.history import CAP, RedisHistory, entry
from common.guard.usage import RedisUsageStore, reading_of
from tests.worker.conftest import World
from tests.worker.events.test_handlers import OLD, billing, subscribed
from tests.worker.events.test_payments import payment
from worker.customers.park import link_customer
from worker.events.handlers import handle_event

VARIANTS = [
    ({"feature_code": "seats", "meter_value": "7"}, "seats", 7.0),
    ({"billing_feature_code": "seats", "quantity": 7}, "seats", 7.0),
    ({"feature": {"code": "seats"}, "value": 7.5}, "seats", 7.5),
    ({"meter": {"feature_code": "seats", "value": "7"}}, "seats", 7.0),
    ({"meter_id": "m_1", "usage": 3}, "meter:m_1", 3.0),
    ({"something_new": True}, "unknown", None),
]


@pytest.mark.parametrize(("data", "feature", "value"), VARIANTS)
def test_every_documented_usage_shape_is_understood_and_the_raw_data_kept(
    data: dict[str, Any], feature: str, value: float | None
) -> None:
    claims = {"type": "customer.meter_usage_updated", "timestamp": "2026-11-22T00:00:00Z", "data": data}
    reading = reading_of(claims, "ev_1", 0.0)
    assert (reading.feature_code, reading.value) == (feature, value)
    assert json.loads(reading.raw) == data


def usage_event(event_id: str, value: int, at: str) -> dict[str, Any]:
    data = {"feature_code": "seats", "meter_value": str(value),
            "meter_type_code": "absolute", "meter_usage_timestamp": at}  # fmt: skip
    return billing(event_id, "customer_1", "customer.meter_usage_updated", **data)


def test_the_latest_usage_per_feature_is_kept_and_a_late_older_one_ignored(world: World) -> None:
    subscribed(world, customer="customer_1")
    handle_event(world.deps, usage_event("ev_1", 4, "2026-11-22T10:00:00Z"), OLD)
    handle_event(world.deps, usage_event("ev_old", 2, "2026-11-22T09:00:00Z"), OLD)
    seats = RedisUsageStore(world.redis).of("customer_1")["seats"]
    assert (seats["value"], seats["kind"], seats["event_id"]) == (4.0, "absolute", "ev_1")


def test_the_timeline_lists_webhooks_passes_links_payments_dead_letters_and_replays(world: World) -> None:
    subscribed(world, customer="customer_1")
    handle_event(world.deps, payment("ev_f", "customer.payment_failed", "2026-11-22T10:00:00Z"), OLD)
    handle_event(world.deps, billing("ev_lost", "customer_9"), OLD)  # unknown customer: parked
    link_customer(world.deps.parking, "customer_9", user_id="kp_1", org_code="org_default")
    kinds = [e["kind"] for e in RedisHistory(world.redis, ttl_s=60).recent("customer_1")]
    assert {"webhook", "pass", "link_changed", "payment_standing"} <= set(kinds)
    hook = next(e for e in RedisHistory(world.redis, ttl_s=60).recent("customer_1") if e["kind"] == "webhook")
    assert (hook["event_id"], hook["kinde_timestamp"]) == ("ev_f", "2026-11-22T10:00:00Z")
    a_pass = next(e for e in RedisHistory(world.redis, ttl_s=60).recent("customer_1") if e["kind"] == "pass")
    assert a_pass["read"] == ["entitlements"]  # with the snapshot on, its one read of what is in force
    lost = [e["kind"] for e in RedisHistory(world.redis, ttl_s=60).recent("customer_9")]
    assert {"dead_letter", "link_changed", "replayed"} <= set(lost)


def test_the_timeline_is_capped_expires_and_holds_no_credentials(world: World) -> None:
    history = RedisHistory(world.redis, ttl_s=60)
    for n in range(CAP + 30):
        history.add("customer_1", entry("webhook", event_id=f"ev_{n}", access_token="eyJ.secret", client_secret="s"))
    found = history.recent("customer_1")
    assert len(found) == CAP
    assert found[0]["event_id"] == f"ev_{CAP + 29}"
    assert not any("token" in k or "secret" in k for e in found for k in e)
    assert 0 < world.redis.ttl(keys.customer_history("customer_1")) <= 60


def test_an_entry_is_stored_compactly_for_a_million_timelines(world: World) -> None:
    history = RedisHistory(world.redis, ttl_s=60)
    item = entry("pass", generation=3, read=["entitlements"], roles=["role_client"], added=["kp_1:role_client"])
    history.add("customer_1", item)
    stored = world.redis.lindex(keys.customer_history("customer_1"), 0)
    assert (", " in stored, '": ' in stored) == (False, False)  # no separator padding: ~6 % of a timeline
    assert len(str(item["at"]).split(".")[-1]) <= 3  # the time to the ms, not 17 digits
    assert history.recent("customer_1") == [item]
