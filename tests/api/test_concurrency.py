"""The guard holds under load (api/concurrency.py): a flood of reads cannot push plan-selection past 1 s.

In process, through the real Starlette app (httpx's ASGI transport). Redis is modelled as what it is
to the API, one FIFO queue that the reads and the guard share (`OneQueueRedis`, 4 ms a call): without
a bound, 500 reads in flight put 2 s of work ahead of the guard's one call and it falls back to
on_error; with the bound, the reads beyond it are answered 503 at once and the guard waits behind at
most `LIMIT` calls (~64 ms). 1 s is the bound Kinde's workflow cares about and generous for a loaded box.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from api.app import create_app
from api.guard_store import MemberCount, Placement
from api.metrics import Metrics
from api.reader import UserView
from common.guard.usage_reports import Kept, Report
from common.plans.mapping import parse_plans
from common.settings import Settings

KEY, SECRET = "ops-Jt5wQ9zL2xVk7Rm4Pc8Hn3Fb", "workflow-Xq7vR2mK9pLs4Tz8Wn3cYb6H"
FLOOD, LIMIT, CALL_S, BOUND_S = 500, 16, 0.004, 1.0
PLANS = """
[plans]
plan_team = ["role_client"]
free = []
[limits.free]
projects = 10
[guard]
on_error = "allow"
member_wait_s = 0.3
"""
SELECTION = {"context": {"billing": {"currentPlanCode": "plan_team", "requestedPlanCode": "free"},
                         "user": {"id": "kp_1"}, "organization": {"code": "org_acme"}}}  # fmt: skip


class OneQueueRedis:
    """One call at a time, first come first served, `CALL_S` each: Redis as the API's clients see it."""

    def __init__(self) -> None:
        self.lock, self.entered = asyncio.Lock(), 0

    async def call(self) -> None:
        self.entered += 1
        async with self.lock:
            await asyncio.sleep(CALL_S)


class Reader:
    def __init__(self, redis: OneQueueRedis) -> None:
        self.redis = redis

    async def user(self, user_id: str) -> UserView | None:
        await self.redis.call()
        return None

    async def customer(self, customer_id: str) -> dict[str, Any] | None:
        await self.redis.call()
        return None

    async def history(self, customer_id: str, limit: int = 0) -> list[dict[str, Any]]:
        await self.redis.call()
        return []

    async def ping(self) -> None:
        await self.redis.call()

    async def data_state(self) -> str:
        return "ok"


class Store:
    """The guard's reads: the user has no customer, so the decision is `unknown_customer` (allowed)."""

    def __init__(self, redis: OneQueueRedis) -> None:
        self.redis = redis

    async def placement(self, user_id: str, org_code: str | None, b2c_org: str, count_members: bool) -> Placement:
        await self.redis.call()
        return Placement(user_links=[], payers=[], candidates={}, b2c_org="")

    async def members(self, org_code: str) -> MemberCount | None:
        await self.redis.call()
        return None

    async def ask_refresh(self, org_code: str, hold_s: float) -> bool:
        await self.redis.call()
        return False

    async def note(self, customer_id: str, item: dict[str, Any], ttl_s: int) -> None:
        await self.redis.call()

    async def report(self, customer_id: str, report: Report, ttl_s: int) -> Kept:
        await self.redis.call()
        return "older"


async def flood_and_ask(limit: int) -> tuple[float, list[int], Metrics]:
    env = {
        "ROLESYNC_API_KEYS": f"ops:{KEY}",
        "ROLESYNC_WORKFLOW_SECRET": SECRET,
        "ROLESYNC_API_MAX_IN_FLIGHT": str(limit),
    }
    redis, metrics = OneQueueRedis(), Metrics()
    app = create_app(Settings.from_env(env), reader=Reader(redis), guard_store=Store(redis), metrics=metrics,
                     plans=parse_plans(PLANS))  # fmt: skip
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://api") as client,
    ):
        headers = {"Authorization": f"Bearer {KEY}"}
        reads = [asyncio.create_task(client.get(f"/v1/customers/c{n}", headers=headers)) for n in range(FLOOD)]
        answered = 0
        deadline = time.monotonic() + 30
        while redis.entered + answered < FLOOD and time.monotonic() < deadline:  # the whole flood is in
            await asyncio.sleep(0.005)
            answered = sum(t.done() for t in reads)
        started = time.perf_counter()
        decided = await client.post(
            "/v1/plan-selection", json=SELECTION, headers={"x-rolesync-workflow-secret": SECRET}
        )
        took = time.perf_counter() - started
        assert decided.status_code == 200
        assert decided.json()["allow"] is True
        statuses = [r.status_code for r in await asyncio.gather(*reads)]
    return took, statuses, metrics


def decisions(metrics: Metrics, outcome: str) -> float:
    return metrics.registry.get_sample_value("rolesync_guard_decisions_total", {"outcome": outcome}) or 0.0


def test_a_flood_of_reads_cannot_push_plan_selection_past_a_second() -> None:
    took, statuses, metrics = asyncio.run(flood_and_ask(LIMIT))
    assert took < BOUND_S, f"plan-selection took {took:.3f} s under a flood of {FLOOD} reads"
    assert decisions(metrics, "unknown_customer") == 1  # decided from Redis, not on_error's fallback
    assert (
        metrics.registry.get_sample_value("rolesync_guard_fallbacks_total", {"reason": "timeout", "on_error": "allow"})
        is None
    )
    assert statuses.count(404) >= LIMIT  # the reads in flight were served
    assert statuses.count(503) >= FLOOD - 2 * LIMIT  # the rest shed at once
    assert set(statuses) == {404, 503}
    assert metrics.registry.get_sample_value("rolesync_api_shed_total", {"budget": "reads"}) == statuses.count(503)


def test_without_the_bound_the_same_flood_makes_the_guard_fall_back() -> None:
    """The model shows the danger: with no bound every read queues on Redis ahead of the guard."""
    took, statuses, metrics = asyncio.run(flood_and_ask(0))
    assert set(statuses) == {404}
    assert decisions(metrics, "unknown_customer") == 0
    assert took >= 1.0  # the guard's own bound (member_wait_s + 1 s margin) ran out: on_error answered


def test_the_in_flight_bound_defaults_to_64() -> None:
    assert Settings.from_env({}).api_max_in_flight == 64
