"""Why does this user hold (or not hold) this role in this org? Pure: the answer from what the passes kept.

A target's managed roles are the union of what every covering customer and every hand grant gives
(docs/architecture.md, "The convergence model"). So the answer names each covering customer from the target's snapshot:
how it is linked (a personal plan, or the org's plan covering every member), its plans, the plans.toml
line that grants the role (or why it grants none: no plan maps to it, or the payment is failing and
suspended), and the last pass of that customer that wrote the role; and each hand grant giving the role
there, with its reason and who made it (`rolesync grants list`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from common.customers.links import CustomerLink
from common.entitlements.snapshots import ByHand, Source, TargetSnapshot
from common.plans.mapping import PlanMap
from ops.customers import describe


@dataclass(frozen=True)
class Cover:
    """One covering customer, and what it says about the role."""

    customer_id: str
    link: str  # "user kp_1 in org org_a" (a personal plan) or "org org_a (B2B)" (every member)
    plans: list[str]
    lines: list[str]  # the plans.toml lines granting the role: `plan_client = ["role_client"]`
    suspended: bool
    last_pass: dict[str, Any] | None  # the timeline's newest pass that wrote the role, if any is kept

    @property
    def grants(self) -> bool:
        return bool(self.lines)


@dataclass(frozen=True)
class Why:
    user_id: str
    org_code: str
    role: str
    holds: bool  # the snapshot says the role was written at the target
    managed: bool  # plans.toml names the role: this service gives and removes it
    covers: list[Cover]
    by_hand: list[ByHand] = field(default_factory=list)  # the hand grants giving the role at the target

    @property
    def answer(self) -> str:
        granting = [c.customer_id for c in self.covers if c.grants]
        granting += [f"hand grant {g.grant_id} ({g.reason}, by {g.by})" for g in self.by_hand]
        if not self.managed:
            return (f"{self.role} is not a managed role: plans.toml never names it, so this service neither gives "
                    f"nor removes it (a person or another tool does).")  # fmt: skip
        held = "holds" if self.holds else "does not hold"
        if granting:
            return f"{self.user_id} {held} {self.role} in {self.org_code}: granted by {', '.join(granting)}."
        if not self.covers:
            return (f"{self.user_id} {held} {self.role} in {self.org_code}: no paying customer covers this user there "
                    f"and no hand grant gives it.")  # fmt: skip
        return f"{self.user_id} {held} {self.role} in {self.org_code}: no covering customer's plans grant it."


def explain(user_id: str, org_code: str, role: str, snapshot: TargetSnapshot | None, plans: PlanMap,
            links: Mapping[str, CustomerLink | None], passes: Mapping[str, list[dict[str, Any]]]) -> Why:  # fmt: skip
    """`links` and `passes` (each customer's timeline, newest first) for the snapshot's covering customers."""
    sources = snapshot.sources if snapshot else ()
    covers = [_cover(s, role, plans, links.get(s.customer_id), passes.get(s.customer_id, []), user_id)
              for s in sources]  # fmt: skip
    holds = bool(snapshot and role in snapshot.roles)
    by_hand = [g for g in (snapshot.by_hand if snapshot else ()) if role in g.roles]
    return Why(user_id, org_code, role, holds, role in plans.managed_roles, covers, by_hand)


def _cover(source: Source, role: str, plans: PlanMap, link: CustomerLink | None, entries: list[dict[str, Any]],
           user_id: str) -> Cover:  # fmt: skip
    codes = [p.code for p in source.plans]
    return Cover(source.customer_id, describe(link), codes, _lines(codes, role, plans, source.suspended),
                 source.suspended, last_pass(entries, user_id, role))  # fmt: skip


def _lines(codes: list[str], role: str, plans: PlanMap, suspended: bool) -> list[str]:
    if suspended:
        granted = role in plans.payment_failed.grants
        return [f"[payment_failed] grants = {json.dumps(list(plans.payment_failed.grants))}"] if granted else []
    found = [c for c in codes if role in plans.roles_by_plan.get(c, ())]
    return [f"{c} = {json.dumps(list(plans.roles_by_plan[c]))}" for c in found]


def last_pass(entries: list[dict[str, Any]], user_id: str, role: str) -> dict[str, Any] | None:
    """The newest pass that added the role for this user, else the newest whose roles include it."""
    passes = [e for e in entries if e.get("kind") == "pass"]
    added = f"{user_id}:{role}"
    return next((p for p in passes if added in (p.get("added") or [])), None) or next(
        (p for p in passes if role in (p.get("roles") or [])), None
    )
