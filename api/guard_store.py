"""The guard's port onto Redis, for the API: links, usage, the member cache, the timeline, refresh requests.

Reads what the worker's passes and the webhooks keep; writes only the customer's timeline, the app's
usage reports, and (atomically, at most once per interval per org) a `refresh_org_members` message
in Dramatiq's Redis layout, as the ingest enqueues (docs/stack-notes.md), so the API never calls Kinde.
"""

from __future__ import annotations

import json
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

# One round trip for where a selection's customer may be (every Redis call costs the API more CPU than the
# decision itself). ARGV: the user's customers set, the org's payers set ('' for none), the default-org key,
# the link and grant key prefixes. Returns {user's customers, org's payers, default org, {id, link, grants}...}.
_PLACEMENT = """
local customers = redis.call('SMEMBERS', ARGV[1])
local payers = {}
if ARGV[2] ~= '' then payers = redis.call('SMEMBERS', ARGV[2]) end
local rows = {}
for _, group in ipairs({customers, payers}) do
  for _, c in ipairs(group) do
    table.insert(rows, c)
    table.insert(rows, redis.call('GET', ARGV[4] .. c) or '')
    table.insert(rows, redis.call('GET', ARGV[5] .. c) or '')
  end
end
return {customers, payers, redis.call('GET', ARGV[3]) or '', rows}
"""
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


@dataclass(frozen=True)
class Placement:
    user_links: list[CustomerLink]  # the user's own customers' links
    payers: list[str]  # the org's own customers (none without an org)
    links: dict[str, CustomerLink]  # every candidate's link, by customer id
    plans: dict[str, list[str]]  # the plan codes each candidate's last pass recorded
    b2c_org: str  # the tenant's default org as the worker cached it ('' if not yet)


class GuardStore(Protocol):
    async def placement(self, user_id: str, org_code: str | None) -> Placement: ...

    async def facts(self, customer_id: str, members_org: str | None) -> tuple[Usage, MemberCount | None]:
        """The customer's usage, and the member count of `members_org` (None: not counted, or not asked)."""

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
        self._placement = client.register_script(_PLACEMENT)
        self._keep = client.register_script(KEEP_NEWER)

    async def placement(self, user_id: str, org_code: str | None) -> Placement:
        args = [keys.user_customers(user_id), keys.org_payers(org_code) if org_code else "", keys.KINDE_DEFAULT_ORG,
                keys.customer_link(""), keys.customer_grants("")]  # fmt: skip
        with redis_errors("reading where a user's customers are"):
            customers, payers, b2c, rows = await self._placement(keys=[], args=args)
        links = {rows[i]: CustomerLink.from_json(rows[i + 1]) for i in range(0, len(rows), 3) if rows[i + 1]}
        plans = {rows[i]: list(json.loads(rows[i + 2]).get("plans") or []) for i in range(0, len(rows), 3)
                 if rows[i + 2]}  # fmt: skip
        user_links = [links[c] for c in sorted(customers) if c in links]
        return Placement(user_links, sorted(payers), links, plans, str(b2c or ""))

    async def facts(self, customer_id: str, members_org: str | None) -> tuple[Usage, MemberCount | None]:
        with redis_errors("reading a customer's usage"):
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(keys.customer_usage(customer_id))
                pipe.hgetall(keys.customer_usage_reports(customer_id))
                if members_org:
                    pipe.get(keys.org_members_read(members_org))
                    pipe.scard(keys.org_members(members_org))
                found = await pipe.execute()
        counted = MemberCount(int(found[3]), float(found[2])) if members_org and found[2] else None
        return Usage(usage_rows(found[0]), report_rows(found[1])), counted

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
