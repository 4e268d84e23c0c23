"""The API's one port: what the passes keep in Redis, read back (it never calls Kinde, never writes).

`RedisReader` is the adapter over an asyncio Redis client; tests may use an in-memory fake.
A user's read is one script call (one round trip: at 1,000 req/s the Redis client's per-call cost is
most of the API's CPU): the user's snapshots, whether any customer is linked to the user, and the
usage of every customer those snapshots name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

import redis.asyncio

from common import keys
from common.customers.history import CAP
from common.entitlements.snapshots import public_dict
from common.guard import selection_log
from common.guard.usage import usage_rows
from common.guard.usage_reports import report_rows
from common.infra import data_loss
from common.infra.connections import redis_errors

# KEYS: the user's snapshots hash, the user's customers set. ARGV: the usage key prefix (keys.USAGE_PREFIX).
# Returns {linked, {org, snapshot JSON, ...}, {customer, feature, reading JSON, ...}}.
_USER = """
local snaps = redis.call('HGETALL', KEYS[1])
local linked = redis.call('EXISTS', KEYS[2])
local usage, seen = {}, {}
for i = 2, #snaps, 2 do
  for _, source in ipairs(cjson.decode(snaps[i])['customers'] or {}) do
    local c = source['customer_id']
    if c and not seen[c] then
      seen[c] = true
      local rows = redis.call('HGETALL', ARGV[1] .. c)
      for j = 1, #rows, 2 do
        table.insert(usage, c); table.insert(usage, rows[j]); table.insert(usage, rows[j + 1])
      end
    end
  end
end
return {linked, snaps, usage}
"""


@dataclass(frozen=True)
class UserView:
    snapshots: list[dict[str, Any]]  # each target's snapshot in its public shape (TargetSnapshot.to_dict), by target
    usage: dict[str, dict[str, dict[str, Any]]]  # customer id -> feature code -> latest reading


class Reader(Protocol):
    async def user(self, user_id: str) -> UserView | None:
        """None if the user is unknown: no snapshot anywhere and no customer linked to it."""

    async def customer(self, customer_id: str) -> dict[str, Any] | None:
        """None if no link and no grant record names the customer."""

    async def history(self, customer_id: str, limit: int = CAP) -> list[dict[str, Any]]: ...

    async def ping(self) -> None: ...

    async def data_state(self) -> str:
        """Whether Redis lost its data and is being healed (common/infra/data_loss.py): `ok` or `lost, healing`."""


class RedisReader:
    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._redis = client
        self._user = client.register_script(_USER)

    async def user(self, user_id: str) -> UserView | None:
        with redis_errors("reading a user's snapshots"):
            args = [keys.USAGE_PREFIX]
            linked, snaps, rows = await self._user(keys=[keys.user_snapshots(user_id), keys.user_customers(user_id)],
                                                   args=args)  # fmt: skip
        if not snaps and not linked:
            return None
        found = sorted(map(public_dict, snaps[1::2]), key=lambda s: (s["org_code"], s["user_id"]))
        usage: dict[str, dict[str, dict[str, Any]]] = {}
        for i in range(0, len(rows), 3):
            usage.setdefault(rows[i], {}).update(usage_rows({rows[i + 1]: rows[i + 2]}))
        return UserView(found, usage)

    async def customer(self, customer_id: str) -> dict[str, Any] | None:
        with redis_errors("reading a customer"):
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.get(keys.customer_link(customer_id))
                pipe.get(keys.customer_grants(customer_id))
                pipe.get(keys.customer_entitlements(customer_id))
                pipe.hgetall(keys.customer_payment(customer_id))
                pipe.hgetall(keys.customer_usage(customer_id))
                pipe.hgetall(keys.customer_usage_reports(customer_id))
                link, grants, entitlements, payment, usage, reports = await pipe.execute()
        if not link and not grants:
            return None
        return {
            "link": json.loads(link) if link else None,
            "grants": json.loads(grants) if grants else None,
            "entitlements": json.loads(entitlements) if entitlements else None,
            "payment": dict(payment) or None,
            "usage": usage_rows(usage),
            "reports": report_rows(reports),
        }

    async def history(self, customer_id: str, limit: int = CAP) -> list[dict[str, Any]]:
        """The timeline and the plan-selection decisions (kept apart: common/guard/selection_log.py), merged by time."""
        last = max(0, min(limit, CAP) - 1)
        with redis_errors("reading a customer's timeline"):
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.lrange(keys.customer_history(customer_id), 0, last)
                pipe.lrange(keys.customer_plan_selections(customer_id), 0, last)
                timeline, decisions = await pipe.execute()
        return selection_log.merged(map(json.loads, timeline), map(json.loads, decisions), limit=min(limit, CAP))

    async def ping(self) -> None:
        with redis_errors("pinging Redis"):
            await self._redis.ping()

    async def data_state(self) -> str:
        return data_loss.readiness(await data_loss.last_async(self._redis))
