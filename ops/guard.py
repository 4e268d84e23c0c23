"""The plan-selection guard for support and planning: one customer's decision, and a new limits file's refusals.

Reads what the API reads (links, usage, app reports, the member cache) and calls the same pure decision
(common/guard/decision.py); never calls Kinde. An org whose members were never counted is reported as such
rather than decided by `on_error`: on-call should see what is not known.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from common import keys
from common.customers.links import CustomerLink, RedisLinkStore
from common.customers.payer import members_org, personal_team
from common.guard.decision import Decision, Observed, before_reading, decide, usage_value
from common.guard.members import RedisMemberCache
from common.guard.usage import RedisUsageStore
from common.guard.usage_reports import report_rows
from common.infra.connections import redis_errors
from common.plans.limits import ORG_MEMBERS
from common.plans.mapping import PlanMap


@dataclass(frozen=True)
class Facts:
    """What the guard knows of one customer: each metric's value, and which could not be read."""

    customer_id: str
    link: CustomerLink | None
    observed: dict[str, Observed]
    uncounted_org: str | None = None  # the org whose members were never counted, if org_members matters


@dataclass(frozen=True)
class Check:
    customer_id: str
    plan_code: str
    decision: Decision
    facts: Facts

    def as_dict(self) -> dict[str, Any]:
        checked = {m: dict(c) for m, c in self.decision.checked.items()}
        return {"customer_id": self.customer_id, "plan": self.plan_code, **self.decision.answer(),
                "outcome": self.decision.outcome, "metrics": checked,
                "uncounted_org": self.facts.uncounted_org}  # fmt: skip


@dataclass(frozen=True)
class GuardReader:
    redis: redis.Redis
    b2c_org: str  # KINDE_ORG_CODE; else the default org the worker cached

    def facts(self, customer_id: str, metrics: set[str]) -> Facts:
        link = RedisLinkStore(self.redis).get(customer_id)
        meter = RedisUsageStore(self.redis).of(customer_id)
        with redis_errors("reading reported usage"):
            app = report_rows(self.redis.hgetall(keys.customer_usage_reports(customer_id)))
        observed = {m: usage_value(m, meter, app) for m in metrics if m != ORG_MEMBERS}
        org = members_org(link, self._b2c()) if link and ORG_MEMBERS in metrics else None
        counted = RedisMemberCache(self.redis).count(org) if org else None
        if counted is not None:
            observed[ORG_MEMBERS] = Observed(counted.count, "kinde_members", counted.read_at)
        if (team := personal_team(link)) is not None and ORG_MEMBERS in metrics:
            observed[ORG_MEMBERS] = team
        uncounted = org if ORG_MEMBERS in metrics and counted is None else None
        return Facts(customer_id, link, observed, uncounted)

    def _b2c(self) -> str:
        with redis_errors("reading the default org"):
            return self.b2c_org or str(self.redis.get(keys.KINDE_DEFAULT_ORG) or "")

    def customers(self) -> list[str]:
        return RedisLinkStore(self.redis).all_customer_ids()


def check(reader: GuardReader, plans: PlanMap, customer_id: str, plan_code: str) -> Check:
    """The decision a move of `customer_id` to `plan_code` gets now, with what it was decided on."""
    wanted = set(plans.limits.get(plan_code) or {})
    found = reader.facts(customer_id, wanted)
    early = before_reading(plans, plan_code, found.link is not None)  # the API's own first step
    if early is not None:
        return Check(customer_id, plan_code, early, found)
    unreadable = frozenset({ORG_MEMBERS} & wanted) - found.observed.keys()
    decision = decide(plan_code, plans.limits, plans.guard, found.observed, unreadable)
    return Check(customer_id, plan_code, decision, found)


@dataclass
class PlanRefusals:
    plan: str
    refused: list[dict[str, Any]] = field(default_factory=list)  # {customer_id, reasons}
    unknown: list[dict[str, Any]] = field(default_factory=list)  # {customer_id, org_code}: members never counted


def dry_run(reader: GuardReader, plans: PlanMap, on_start: Callable[[int], None] = lambda n: None,
            on_customer: Callable[[str], None] = lambda c: None) -> list[PlanRefusals]:  # fmt: skip
    """Per plan with limits in `plans`, the linked customers a move to it would be refused for now."""
    found = {plan: PlanRefusals(plan) for plan in sorted(plans.limits) if plans.limits[plan]}
    customers = reader.customers()
    on_start(len(customers))
    metrics = {m for limits in plans.limits.values() for m in limits}
    for customer_id in customers:
        facts = reader.facts(customer_id, metrics)
        for plan, out in found.items():
            _judge(plans, plan, facts, out)
        on_customer(customer_id)
    return list(found.values())


def _judge(plans: PlanMap, plan: str, facts: Facts, out: PlanRefusals) -> None:
    decision = decide(plan, plans.limits, plans.guard, facts.observed)
    if decision.reasons:
        out.refused.append({"customer_id": facts.customer_id, "reasons": list(decision.reasons)})
    elif facts.uncounted_org and ORG_MEMBERS in plans.limits[plan]:
        out.unknown.append({"customer_id": facts.customer_id, "org_code": facts.uncounted_org})
