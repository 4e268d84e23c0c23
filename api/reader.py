"""The API's one port: what the passes keep in Redis, read back (it never calls Kinde, never writes).

`RedisReader` is the adapter over an asyncio Redis client; tests may use an in-memory fake.
Each request costs one to three round trips, pipelined.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

import redis.asyncio

from common import keys
from common.connections import redis_errors
from common.grants import Target
from common.history import CAP
from common.snapshots import TargetSnapshot
from common.usage import usage_rows


@dataclass(frozen=True)
class UserView:
    snapshots: list[TargetSnapshot]
    usage: dict[str, dict[str, dict[str, Any]]]  # customer id -> feature code -> latest reading


class Reader(Protocol):
    async def user(self, user_id: str) -> UserView | None:
        """None if the user is unknown: no snapshot anywhere and no customer linked to it."""

    async def customer(self, customer_id: str) -> dict[str, Any] | None:
        """None if no link and no grant record names the customer."""

    async def history(self, customer_id: str, limit: int = CAP) -> list[dict[str, Any]]: ...

    async def ping(self) -> None: ...


class RedisReader:
    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._redis = client

    async def user(self, user_id: str) -> UserView | None:
        with redis_errors("reading a user's snapshots"):
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.smembers(keys.user_targets(user_id))
                pipe.exists(keys.user_customers(user_id))
                orgs, linked = await pipe.execute()
            if not orgs and not linked:
                return None
            found = await self._snapshots(user_id, sorted(str(o) for o in orgs))
            customers = sorted({s.customer_id for snap in found for s in snap.sources})
            return UserView(found, await self._usage(customers))

    async def _snapshots(self, user_id: str, orgs: list[str]) -> list[TargetSnapshot]:
        if not orgs:
            return []
        raws = await self._redis.mget([keys.target_snapshot(Target(o, user_id).key) for o in orgs])
        return [TargetSnapshot.from_json(str(raw)) for raw in raws if raw]

    async def _usage(self, customers: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
        if not customers:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for customer_id in customers:
                pipe.hgetall(keys.customer_usage(customer_id))
            rows = await pipe.execute()
        return {c: usage_rows(r) for c, r in zip(customers, rows, strict=True) if r}

    async def customer(self, customer_id: str) -> dict[str, Any] | None:
        with redis_errors("reading a customer"):
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.get(keys.customer_link(customer_id))
                pipe.get(keys.customer_grants(customer_id))
                pipe.get(keys.customer_entitlements(customer_id))
                pipe.hgetall(keys.customer_payment(customer_id))
                pipe.hgetall(keys.customer_usage(customer_id))
                link, grants, entitlements, payment, usage = await pipe.execute()
        if not link and not grants:
            return None
        return {
            "link": json.loads(link) if link else None,
            "grants": json.loads(grants) if grants else None,
            "entitlements": json.loads(entitlements) if entitlements else None,
            "payment": dict(payment) or None,
            "usage": usage_rows(usage),
        }

    async def history(self, customer_id: str, limit: int = CAP) -> list[dict[str, Any]]:
        with redis_errors("reading a customer's timeline"):
            raws = await self._redis.lrange(keys.customer_history(customer_id), 0, max(0, min(limit, CAP) - 1))
        return [json.loads(r) for r in raws]

    async def ping(self) -> None:
        with redis_errors("pinging Redis"):
            await self._redis.ping()
