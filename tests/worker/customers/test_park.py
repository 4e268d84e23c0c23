"""Parking's replay removes the parked record it replayed, never one the replay itself wrote again."""

from __future__ import annotations

from typing import Any

import redis

from common.customers.links import RedisLinkStore
from common.infra.deadletters import UNRESOLVED, RedisDeadLetterStore
from worker.customers.park import Parking


def test_a_replayed_event_parked_again_at_once_keeps_its_record(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    links, dead_letters = RedisLinkStore(client), RedisDeadLetterStore(client)
    parking: Parking

    def enqueue_and_park_again(claims: dict[str, Any], meta: dict[str, Any], delay_ms: int) -> None:
        if meta.get("replayed"):  # the worker took the replay at once and could not resolve it yet
            parking.park(claims["event_id"], claims, {}, "customer_1")

    parking = Parking(links, dead_letters, enqueue_and_park_again)
    claims = {"type": "customer.plan_changed", "event_id": "ev_1", "data": {"customer_id": "customer_1"}}
    parking.park("ev_1", claims, {}, "customer_1")
    assert parking.replay("customer_1") == 1
    again = dead_letters.get("ev_1")
    assert again is not None
    assert again.reason == UNRESOLVED
    assert [r.id for r in dead_letters.of_customer("customer_1")] == ["ev_1"]
