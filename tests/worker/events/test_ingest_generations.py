"""Generations counted by the ingest as it queues (ingest/enqueue.py) are the ones the worker covers.

Real Redis for both halves: the ingest's enqueue script writes the events, the worker's handlers
read them back, in the order a backlog hands them out (the newest first, here).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio

from common.errors import RetryableError
from ingest.enqueue import RedisEventQueue
from tests.ops.conftest import run_cli
from tests.worker.conftest import World, build_world
from tests.worker.events.test_payments import SUSPEND
from worker.events.coalesce import RedisCoalescer
from worker.events.handlers import converge_customer, handle_event

OLD = {"received_at": 0.0}


def ingested(url: str, events: list[dict[str, Any]]) -> None:
    async def main() -> None:
        client = redis.asyncio.Redis.from_url(url)
        queue = RedisEventQueue(client, dedupe_ttl_s=600)
        try:
            for event in events:
                assert await queue.enqueue_once(event, None, 0.0)
        finally:
            await queue.aclose()
            await client.aclose()

    asyncio.run(main())


def billing(event_id: str, type_: str) -> dict[str, Any]:
    return {"type": type_, "event_id": event_id, "data": {"customer_id": "customer_1"}}


def test_one_pass_covers_every_event_of_a_plan_change_ingested_before_it(world: World, redis_url: str) -> None:
    world.kinde.add_user("kp_1", "customer_1")
    world.kinde.set_plan("customer_1", "plan_subscriber")
    created = {"type": "user.created", "event_id": "ev_u", "data": {"user": {"id": "kp_1"}}}
    assert handle_event(world.deps, created, OLD) == "converged"
    world.kinde.set_plan("customer_1", "plan_client")
    burst = [billing(f"ev_{n}", t) for n, t in enumerate(("agreement_cancelled", "agreement_created", "plan_changed"))]
    burst = [{**e, "type": f"customer.{e['type']}"} for e in burst]
    ingested(redis_url, burst)
    calls = len(world.kinde.calls)

    outcomes = [handle_event(world.deps, event, OLD) for event in reversed(burst)]

    assert outcomes == ["converged", "superseded", "superseded"]  # ingested before the pass, handled after it
    assert world.kinde.role_keys("org_default", "kp_1") == ["role_client"]
    assert len(world.kinde.calls) - calls == 4  # entitlements (plans, features), roles held, POST, DELETE


def test_a_payment_failure_ingested_before_an_unrelated_pass_still_suspends(redis_url: str) -> None:
    """The ingest counts the event, a pass (a reconcile, say) runs before the worker reaches it and reads
    the old standing; the event must still bring a pass that sees the failure, on a retry too."""
    world = build_world(redis_url, plans=SUSPEND)
    world.kinde.roles_by_key["role_past_due"] = "r-due"
    world.kinde.add_user("kp_1", "customer_1")
    world.kinde.set_plan("customer_1", "plan_client")
    created = {"type": "user.created", "event_id": "ev_u", "data": {"user": {"id": "kp_1"}}}
    assert handle_event(world.deps, created, OLD) == "converged"
    failed = {**billing("ev_f", "customer.payment_failed"), "timestamp": datetime.now(UTC).isoformat()}
    ingested(redis_url, [failed])
    assert converge_customer(world.deps, "customer_1", "reconcile", "msg_1") == "converged"  # old standing

    world.kinde.fail_next = 1  # the first attempt dies mid-pass; the broker retries the message
    with pytest.raises(RetryableError):
        handle_event(world.deps, failed, OLD)
    assert handle_event(world.deps, failed, OLD) == "converged"
    assert world.kinde.role_keys("org_default", "kp_1") == ["role_past_due"]
    assert handle_event(world.deps, failed, OLD) == "duplicate"  # a redelivery once that pass is done


class _RecountFailsOnce(RedisCoalescer):
    """Redis drops the recount's write once (a timeout, a failover): the standing is already recorded."""

    failed = False

    def assign(self, event_id: str, customer_id: str) -> int:
        if event_id.endswith(":payment") and not self.failed:
            self.failed = True
            raise RetryableError("Redis is unavailable: TimeoutError", reason="redis_unavailable")
        return super().assign(event_id, customer_id)


def test_a_payment_failure_still_suspends_when_its_recount_failed_after_the_standing_was_recorded(
    redis_url: str,
) -> None:
    world = build_world(redis_url, plans=SUSPEND)
    world.kinde.roles_by_key["role_past_due"] = "r-due"
    world.kinde.add_user("kp_1", "customer_1")
    world.kinde.set_plan("customer_1", "plan_client")
    created = {"type": "user.created", "event_id": "ev_u", "data": {"user": {"id": "kp_1"}}}
    assert handle_event(world.deps, created, OLD) == "converged"
    failed = {**billing("ev_f", "customer.payment_failed"), "timestamp": datetime.now(UTC).isoformat()}
    ingested(redis_url, [failed])
    assert converge_customer(world.deps, "customer_1", "reconcile", "msg_1") == "converged"  # old standing
    deps = replace(world.deps, coalescer=_RecountFailsOnce(world.redis, event_ttl_s=3600))

    with pytest.raises(RetryableError):
        handle_event(deps, failed, OLD)
    assert handle_event(deps, failed, OLD) == "converged"  # the broker's retry
    assert world.kinde.role_keys("org_default", "kp_1") == ["role_past_due"]


def test_history_names_a_superseded_event_apart_from_one_received_twice(world: World, redis_url: str) -> None:
    """Two events ingested before a newer one's pass: `superseded`; the newer one delivered again: `duplicate`."""
    world.kinde.add_user("kp_1", "customer_1")
    world.kinde.set_plan("customer_1", "plan_client")
    assert handle_event(world.deps, {"type": "user.created", "event_id": "ev_u", "data": {"user": {"id": "kp_1"}}},
                        OLD) == "converged"  # fmt: skip
    burst = [billing("ev_a", "customer.agreement_created"), billing("ev_b", "customer.plan_changed")]
    ingested(redis_url, burst)
    for event in [burst[1], burst[0], burst[1]]:  # the newest first, then the older one, then a redelivery
        handle_event(world.deps, event, OLD)

    found = run_cli({"REDIS_URL": redis_url}, "customers", "history", "customer_1", "--json")
    webhooks = [(e["event_id"], e["outcome"]) for e in json.loads(found.stdout)["entries"] if e["kind"] == "webhook"]
    assert sorted(webhooks) == [("ev_a", "superseded"), ("ev_b", "converged"), ("ev_b", "duplicate")]
    assert "outcome=superseded" in run_cli({"REDIS_URL": redis_url}, "customers", "history", "customer_1").stdout
