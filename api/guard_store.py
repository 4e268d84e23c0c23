"""The guard's port onto Redis, for the API: links, usage, the member cache, the timeline, refresh requests.

Reads what the worker's passes and the webhooks keep; writes only the customer's timeline, the app's
usage reports, and (atomically, at most once per interval per org) a `refresh_org_members` message
in Dramatiq's Redis layout, as the ingest enqueues (docs/stack-notes.md), so the API never calls Kinde.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

import redis.asyncio

from common import keys
from common.customers.history import CAPPED_PUSH
from common.customers.links import CustomerLink
from common.guard import selection_log
from common.guard.members import MemberCount
from common.guard.usage import KEEP_NEWER, usage_rows
from common.guard.usage_reports import KEPT_BY_ANSWER, Kept, Report, report_rows
from common.infra.connections import redis_errors
from common.message_layout import encoded_message
from common.messages import GUARD_QUEUE, refresh_members_message

# Everything a decision reads, in one round trip (each Redis call costs the API more CPU than the decision
# itself): the user's customers and the org's own, and for each such candidate its link, grant record,
# meter usage, app reports and the member count of the org its link places it in (the link's org, else the
# B2C org: common/customers/payer.py members_org). That placement is the one Lua copy of
# common/customers/links.py `placed_org` (the links are read here, in the one round trip; a test holds the two
# equal: tests/api/test_guard_placement.py). ARGV: user's customers set, org's payers set ('' for none), the
# default-org key, the B2C org ('' = the cached default), whether to count members ('1'), then the key
# prefixes of links, grants, usage, reports, members, members-read.
# Returns {user's customers, org's payers, B2C org, {{id, link, grants, usage, reports, read_at, count}...}}.
_PLACEMENT = """
local customers = redis.call('SMEMBERS', ARGV[1])
local payers = {}
if ARGV[2] ~= '' then payers = redis.call('SMEMBERS', ARGV[2]) end
local b2c = ARGV[4]
if b2c == '' then b2c = redis.call('GET', ARGV[3]) or '' end
local rows = {}
for _, group in ipairs({customers, payers}) do
  for _, c in ipairs(group) do
    local link = redis.call('GET', ARGV[6] .. c) or ''
    local read_at, count = '', 0
    if ARGV[5] == '1' and link ~= '' then
      local org = cjson.decode(link)['org_code']
      if type(org) ~= 'string' or org == '' then org = b2c end
      if org ~= '' then
        read_at = redis.call('GET', ARGV[11] .. org) or ''
        count = redis.call('SCARD', ARGV[10] .. org)
      end
    end
    table.insert(rows, {c, link, redis.call('GET', ARGV[7] .. c) or '', redis.call('HGETALL', ARGV[8] .. c),
                        redis.call('HGETALL', ARGV[9] .. c), read_at, count})
  end
end
return {customers, payers, b2c, rows}
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
    meter: dict[str, dict[str, Any]]  # feature code -> latest meter reading (common/guard/usage.py)
    app: dict[str, dict[str, Any]]  # metric -> latest app report (common/guard/usage_reports.py)


@dataclass(frozen=True)
class Candidate:
    link: CustomerLink | None
    plans: list[str]  # the plan codes its last pass recorded
    usage: Usage
    members: MemberCount | None  # of the org its link places it in; None if not counted (or not asked)


@dataclass(frozen=True)
class Placement:
    user_links: list[CustomerLink]  # the user's own customers' links
    payers: list[str]  # the org's own customers (none without an org)
    candidates: dict[str, Candidate]
    b2c_org: str  # KINDE_ORG_CODE, else the tenant's default org as the worker cached it ('' if neither)

    @property
    def plans(self) -> dict[str, list[str]]:
        return {c: found.plans for c, found in self.candidates.items()}


class GuardStore(Protocol):
    async def placement(self, user_id: str, org_code: str | None, b2c_org: str, count_members: bool) -> Placement:
        """Every customer that may pay for the selection, with all a decision reads about each."""

    async def members(self, org_code: str) -> MemberCount | None: ...

    async def ask_refresh(self, org_code: str, hold_s: float) -> bool:
        """Queue one member listing of the org unless one was asked within `hold_s`; True if queued now."""

    async def note(self, customer_id: str, item: dict[str, Any], ttl_s: int) -> None: ...

    async def report(self, customer_id: str, report: Report, ttl_s: int) -> Kept:
        """Keep the report of a linked customer unless a newer one of the metric is kept; expire them after ttl_s."""


class RedisGuardStore:
    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._redis = client
        self._ask = client.register_script(_ASK)
        self._placement = client.register_script(_PLACEMENT)
        self._keep = client.register_script(KEEP_NEWER)
        self._note = client.register_script(CAPPED_PUSH)  # one command, not a MULTI of five

    async def placement(self, user_id: str, org_code: str | None, b2c_org: str, count_members: bool) -> Placement:
        args = [keys.user_customers(user_id), keys.org_payers(org_code) if org_code else "", keys.KINDE_DEFAULT_ORG,
                b2c_org, "1" if count_members else "0", keys.customer_link(""), keys.customer_grants(""),
                keys.customer_usage(""), keys.customer_usage_reports(""), keys.org_members(""),
                keys.org_members_read("")]  # fmt: skip
        with redis_errors("reading what a plan selection decides on"):
            customers, payers, b2c, rows = await self._placement(keys=[], args=args)
        candidates = {str(row[0]): _candidate(row) for row in rows}
        user_links = [link for c in sorted(customers) if (link := candidates[c].link) is not None]
        return Placement(user_links, sorted(payers), candidates, str(b2c or ""))

    async def members(self, org_code: str) -> MemberCount | None:
        with redis_errors("counting an org's cached members"):
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.get(keys.org_members_read(org_code))
                pipe.scard(keys.org_members(org_code))
                read_at, count = await pipe.execute()
        return MemberCount(int(count), float(read_at)) if read_at else None

    async def ask_refresh(self, org_code: str, hold_s: float) -> bool:
        message = refresh_members_message(org_code)
        data = encoded_message(message, {"redis_message_id": message.message_id})
        script_keys = [keys.org_members_asked(org_code), keys.queue_messages(GUARD_QUEUE), keys.queue_list(GUARD_QUEUE)]
        with redis_errors("asking for an org's member listing"):
            return bool(await self._ask(keys=script_keys, args=[max(1, int(hold_s)), message.message_id, data]))

    async def note(self, customer_id: str, item: dict[str, Any], ttl_s: int) -> None:
        """A decision onto the customer's own capped decision list (common/guard/selection_log.py), not its timeline,
        and onto the fleet's list with its customer id."""
        fleet = json.dumps({**item, "customer_id": customer_id}, sort_keys=True)
        own = json.dumps(item, sort_keys=True)
        args: list[str | int] = [own, selection_log.CAP, ttl_s, fleet, selection_log.FLEET_CAP, 0]  # fleet's: no ttl
        with redis_errors("writing a customer's plan-selection decisions"):
            await self._note(keys=[keys.customer_plan_selections(customer_id), keys.PLAN_SELECTIONS], args=args)

    async def report(self, customer_id: str, report: Report, ttl_s: int) -> Kept:
        args: list[str | int] = [report.metric, report.to_json(), f"{report.at:.6f}", ttl_s]
        script_keys = [keys.customer_usage_reports(customer_id), keys.customer_link(customer_id)]
        with redis_errors("recording reported usage"):
            return KEPT_BY_ANSWER[int(await self._keep(keys=script_keys, args=args))]


def _candidate(row: list[Any]) -> Candidate:
    _, link, grants, usage, reports, read_at, count = row
    plans = list(json.loads(grants).get("plans") or []) if grants else []
    meter, app = (dict(zip(r[::2], r[1::2], strict=True)) for r in (usage, reports))
    members = MemberCount(int(count), float(read_at)) if read_at else None
    return Candidate(CustomerLink.from_json(link) if link else None, plans, Usage(usage_rows(meter), report_rows(app)),
                     members)  # fmt: skip
