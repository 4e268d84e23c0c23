"""The guard's port onto Redis, for the API: links, usage, the member cache, the timeline, refresh requests.

Reads what the worker's passes and the webhooks keep; writes only the customer's timeline, the app's
usage reports, and (atomically, at most once per interval per org) a `refresh_org_members` message
in Dramatiq's Redis layout, as the ingest enqueues (docs/stack-notes.md), so the API never calls Kinde.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import dramatiq
import redis.asyncio

from common import keys
from common.connections import redis_errors
from common.history import CAP
from common.links import CustomerLink
from common.members import MemberCount
from common.messages import GUARD_QUEUE, refresh_members_message
from common.usage import usage_rows
from common.usage_reports import KEEP_NEWER, Report, report_rows

# KEYS: the org's asked key, the guard queue's message hash and list. ARGV: hold s, message id, data.
_ASK = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('RPUSH', KEYS[3], ARGV[2])
return 1
"""


@dataclass(frozen=True)
class Usage:
    meter: dict[str, dict[str, Any]]  # feature code -> latest meter reading (common/usage.py)
    app: dict[str, dict[str, Any]]  # metric -> latest app report (common/usage_reports.py)


class GuardStore(Protocol):
    async def placement(self, user_id: str, org_code: str | None) -> tuple[list[CustomerLink], list[str], str]:
        """The user's customers' links, the org's own customers (none without an org), the B2C org."""

    async def link(self, customer_id: str) -> CustomerLink | None: ...

    async def plans(self, customer_ids: Iterable[str]) -> dict[str, list[str]]:
        """The plan codes each customer's last pass recorded."""

    async def usage(self, customer_id: str) -> Usage: ...

    async def members(self, org_code: str) -> MemberCount | None: ...

    async def ask_refresh(self, org_code: str, hold_s: float) -> bool:
        """Queue one member listing of the org unless one was asked within `hold_s`; True if queued now."""

    async def note(self, customer_id: str, item: dict[str, Any], ttl_s: int) -> None: ...

    async def report(self, customer_id: str, report: Report) -> bool:
        """Keep the report unless a newer one of the metric is kept; True if kept."""


class RedisGuardStore:
    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._redis = client
        self._ask = client.register_script(_ASK)
        self._keep = client.register_script(KEEP_NEWER)

    async def placement(self, user_id: str, org_code: str | None) -> tuple[list[CustomerLink], list[str], str]:
        with redis_errors("reading where a user's customers are"):
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.smembers(keys.user_customers(user_id))
                pipe.smembers(keys.org_payers(org_code or ""))
                pipe.get(keys.KINDE_DEFAULT_ORG)
                customers, payers, b2c = await pipe.execute()
            raws = await self._redis.mget([keys.customer_link(c) for c in sorted(customers)]) if customers else []
        links = [CustomerLink.from_json(str(r)) for r in raws if r]
        return links, sorted(payers) if org_code else [], str(b2c or "")

    async def link(self, customer_id: str) -> CustomerLink | None:
        with redis_errors("reading a customer link"):
            raw = await self._redis.get(keys.customer_link(customer_id))
        return CustomerLink.from_json(str(raw)) if raw else None

    async def plans(self, customer_ids: Iterable[str]) -> dict[str, list[str]]:
        ids = sorted(set(customer_ids))
        with redis_errors("reading customers' grant records"):
            raws = await self._redis.mget([keys.customer_grants(c) for c in ids]) if ids else []
        return {c: list(json.loads(r).get("plans") or []) for c, r in zip(ids, raws, strict=True) if r}

    async def usage(self, customer_id: str) -> Usage:
        with redis_errors("reading a customer's usage"):
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(keys.customer_usage(customer_id))
                pipe.hgetall(keys.customer_usage_reports(customer_id))
                meter, app = await pipe.execute()
        return Usage(usage_rows(meter), report_rows(app))

    async def members(self, org_code: str) -> MemberCount | None:
        with redis_errors("counting an org's cached members"):
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.get(keys.org_members_read(org_code))
                pipe.scard(keys.org_members(org_code))
                read_at, count = await pipe.execute()
        return MemberCount(int(count), float(read_at)) if read_at else None

    async def ask_refresh(self, org_code: str, hold_s: float) -> bool:
        message = refresh_members_message(org_code)
        fields = {**message.asdict(), "options": {"redis_message_id": message.message_id}}
        data = dramatiq.get_encoder().encode(fields)
        script_keys = [keys.org_members_asked(org_code), keys.queue_messages(GUARD_QUEUE), keys.queue_list(GUARD_QUEUE)]
        with redis_errors("asking for an org's member listing"):
            return bool(await self._ask(keys=script_keys, args=[max(1, int(hold_s)), message.message_id, data]))

    async def note(self, customer_id: str, item: dict[str, Any], ttl_s: int) -> None:
        key = keys.customer_history(customer_id)
        with redis_errors("writing a customer's timeline"):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.lpush(key, json.dumps(item, sort_keys=True))
                pipe.ltrim(key, 0, CAP - 1)
                pipe.expire(key, ttl_s)
                await pipe.execute()

    async def report(self, customer_id: str, report: Report) -> bool:
        args = [report.metric, report.to_json(), f"{report.at:.6f}"]
        with redis_errors("recording reported usage"):
            return bool(await self._keep(keys=[keys.customer_usage_reports(customer_id)], args=args))
