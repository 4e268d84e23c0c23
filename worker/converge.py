"""Converge one billing customer's roles from Kinde's current state, never from an event's delta.

agreements (all pages; active = no `expires_on` or one in the future) → plan codes → plans.toml →
desired managed roles → for each person the customer stands for, read their roles in the org and
write only the difference. Roles not named in plans.toml are never touched, so a role given by
hand survives every plan change. B2C: the linked user in the link's org (else `KINDE_ORG_CODE`,
else the tenant's default org). B2B: every member of the linked org.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from common.errors import PermanentError
from common.links import CustomerLink
from common.payments import PaymentStore
from common.plans import PlanMap
from worker.kinde import KindeApi
from worker.roles import RoleCatalog

log = structlog.get_logger(__name__)
_warned_plans: set[str] = set()


@dataclass(frozen=True)
class Member:
    org_code: str
    user_id: str
    role_keys: frozenset[str] | None = None  # known from the member listing, else read per user


@dataclass
class Outcome:
    desired: frozenset[str]
    added: list[tuple[str, str]] = field(default_factory=list)  # (user_id, role key)
    removed: list[tuple[str, str]] = field(default_factory=list)


def is_active(agreement: dict[str, Any], now: datetime) -> bool:
    expires = agreement.get("expires_on")
    if not expires:
        return True
    try:
        when = datetime.fromisoformat(str(expires).replace("Z", "+00:00"))
    except ValueError:
        return True  # an unreadable date must not strip a paying customer's roles
    return (when if when.tzinfo else when.replace(tzinfo=UTC)) > now


def active_plan_codes(agreements: Iterable[dict[str, Any]], now: datetime) -> list[str]:
    codes = (a.get("plan_code") or _nested_code(a) for a in agreements if is_active(a, now))
    return sorted({str(c) for c in codes if c})


def _nested_code(agreement: dict[str, Any]) -> str | None:
    plan = agreement.get("plan")
    return str(plan.get("code") or plan.get("key") or "") or None if isinstance(plan, dict) else None


def desired_roles(plans: PlanMap, codes: list[str]) -> frozenset[str]:
    for code in sorted(plans.unknown_plans(codes) - _warned_plans):
        _warned_plans.add(code)
        log.warning("unknown_plan_ignored", plan_code=code, hint="add it to plans.toml to grant roles")
    return plans.desired_roles(codes)


@dataclass(frozen=True)
class Converger:
    kinde: KindeApi
    catalog: RoleCatalog
    plans: PlanMap
    b2c_org: Callable[[], str]  # KINDE_ORG_CODE or the tenant's default org
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    payments: PaymentStore | None = None  # read only under plans.toml's `[payment_failed] action = "suspend"`

    def run(self, link: CustomerLink) -> Outcome:
        codes = active_plan_codes(self.kinde.agreements(link.customer_id), self.now())
        outcome = Outcome(self.desired(link.customer_id, codes))
        for member in self.members(link):
            self.converge_member(member, outcome)
        return outcome

    def desired(self, customer_id: str, codes: list[str]) -> frozenset[str]:
        """The plans' roles, or the `[payment_failed]` grants while a paying customer's payment is failing."""
        if codes and self.suspended(customer_id):
            log.info("plan_roles_suspended", plan_codes=codes, reason="payment_failing")
            return frozenset(self.plans.payment_failed.grants)
        return desired_roles(self.plans, codes)

    def suspended(self, customer_id: str) -> bool:
        if not self.plans.suspends() or self.payments is None:
            return False
        found = self.payments.standing(customer_id)
        return found is not None and found["standing"] == "failing"

    def members(self, link: CustomerLink) -> Iterator[Member]:
        if link.kind == "user" and link.user_id:
            yield Member(link.org_code or self.b2c_org(), link.user_id)
            return
        if not link.org_code:
            raise PermanentError(f"link of {link.customer_id} names no user and no org", reason="link_incomplete")
        for row in self.kinde.org_members(link.org_code):
            if row.get("id"):
                yield Member(link.org_code, str(row["id"]), _role_keys(row.get("roles")))

    def converge_member(self, member: Member, outcome: Outcome) -> None:
        current = self.current_roles(member)
        managed = self.plans.managed_roles
        for key in sorted(outcome.desired - current.keys()):
            self.add(member, key)
            outcome.added.append((member.user_id, key))
        for key in sorted((managed & current.keys()) - outcome.desired):
            self.kinde.remove_role(member.org_code, member.user_id, current[key] or self.catalog.id_of(key))
            outcome.removed.append((member.user_id, key))

    def current_roles(self, member: Member) -> dict[str, str | None]:
        """role key → id (None when only the key is known from the member listing)."""
        if member.role_keys is not None:
            return dict.fromkeys(member.role_keys)
        rows = self.kinde.user_roles(member.org_code, member.user_id)
        return {str(r["key"]): str(r["id"]) if r.get("id") else None for r in rows if r.get("key")}

    def add(self, member: Member, key: str) -> None:
        try:
            self.kinde.add_role(member.org_code, member.user_id, self.catalog.id_of(key))
        except PermanentError as exc:
            if exc.reason != "kinde_ROLE_NOT_FOUND":
                raise
            self.catalog.forget()  # the cached id is stale (role re-created); one fresh look-up
            self.kinde.add_role(member.org_code, member.user_id, self.catalog.id_of(key))


def _role_keys(roles: Any) -> frozenset[str] | None:
    if not isinstance(roles, list):
        return None
    return frozenset(str(r.get("key") if isinstance(r, dict) else r) for r in roles if r)
