"""The plan → roles mapping read from plans.toml, and what a failed payment does.

The roles named anywhere in `[plans]` (and under `[payment_failed] grants`) are the *managed*
roles: the service adds and removes only those, so a role given by hand (an admin role, say)
survives every plan change.

`[payment_failed] action = "keep"` (the default): roles follow Kinde's agreements only, so access
ends when Kinde (its Stripe dunning) ends the agreement. `"suspend"`: from a failed payment or an
overdue invoice until a payment succeeds (or a new agreement is made), the customer's plan roles
are withheld and the roles listed in `grants` (say, a "past due" role) given instead.

`[entitlements] enabled = true` (the default): each pass that finds a customer's active agreements
changed also reads its entitlements (features and limits) for the snapshot (common/entitlements/customer.py);
`false` saves that one call per plan change, and the snapshot then lists plans and roles only.

`[limits.<plan>]` and `[guard]`: what the plan-selection guard refuses (common/plans/limits.py); they grant
no roles, so they stay out of `to_json` and the fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from common.errors import ConfigError
from common.plans.limits import GuardPolicy, Limits, parse_guard, parse_limits

PaymentAction = Literal["keep", "suspend"]
PAYMENT_ACTIONS: tuple[PaymentAction, ...] = ("keep", "suspend")


@dataclass(frozen=True)
class PaymentPolicy:
    action: PaymentAction = "keep"
    grants: tuple[str, ...] = ()  # given instead of the plan roles while suspended


@dataclass(frozen=True)
class PlanMap:
    roles_by_plan: Mapping[str, tuple[str, ...]]
    payment_failed: PaymentPolicy = PaymentPolicy()
    entitlements_enabled: bool = True
    limits: Limits = field(default_factory=dict)  # plan code -> metric -> limit (common/plans/limits.py)
    guard: GuardPolicy = field(default_factory=GuardPolicy)

    @property
    def managed_roles(self) -> frozenset[str]:
        granted = (role for roles in self.roles_by_plan.values() for role in roles)
        return frozenset((*granted, *self.payment_failed.grants))

    def suspends(self) -> bool:
        return self.payment_failed.action == "suspend"

    def desired_roles(self, plan_codes: Iterable[str]) -> frozenset[str]:
        """The managed roles the given active plans grant; unknown plan codes grant nothing."""
        return frozenset(role for code in plan_codes for role in self.roles_by_plan.get(code, ()))

    def suspended(self, plan_codes: Collection[str], *, failing: bool) -> bool:
        """A paying customer (some plan) whose payment is failing, under `action = "suspend"`: its plan roles
        are withheld and its features listed as none (worker/convergence/snapshot.py)."""
        return bool(plan_codes) and failing and self.suspends()

    def granted(self, plan_codes: Iterable[str], *, failing: bool) -> frozenset[str]:
        """What a customer with these plans holds, given whether its payment is failing: the one rule
        (the pass, its snapshot and the mapping preview all ask it)."""
        codes = list(plan_codes)
        if self.suspended(codes, failing=failing):
            return frozenset(self.payment_failed.grants)
        return self.desired_roles(codes)

    def unknown_plans(self, plan_codes: Iterable[str]) -> frozenset[str]:
        return frozenset(code for code in plan_codes if code not in self.roles_by_plan)

    def to_json(self) -> str:
        """The mapping's meaning, canonical: key order, role order, duplicates and formatting drop out."""
        plans = {code: sorted(set(roles)) for code, roles in self.roles_by_plan.items()}
        policy = {"action": self.payment_failed.action, "grants": sorted(set(self.payment_failed.grants))}
        return json.dumps({"plans": plans, "payment_failed": policy}, sort_keys=True, separators=(",", ":"))

    @property
    def fingerprint(self) -> str:
        """A short hash of `to_json()`: equal for two files that grant the same roles the same way."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]


def plans_from_json(raw: str) -> PlanMap:
    """The inverse of `PlanMap.to_json` (a mapping stored in Redis by a worker)."""
    data = json.loads(raw)
    roles = {str(code): tuple(str(r) for r in found) for code, found in dict(data["plans"]).items()}
    policy = dict(data.get("payment_failed") or {})
    action = policy.get("action", "keep")
    if action not in PAYMENT_ACTIONS:
        raise ConfigError(f"stored mapping has an unknown [payment_failed] action {action!r}")
    grants = tuple(str(r) for r in policy.get("grants") or [])
    return PlanMap(roles, PaymentPolicy(cast(PaymentAction, action), grants))


def load_plans(path: Path) -> PlanMap:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"plans file {path} not found (set ROLESYNC_PLANS or create it)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"plans file {path} cannot be read: {exc}") from None
    return parse_plans(text, source=str(path))


def parse_plans(text: str, *, source: str = "plans.toml") -> PlanMap:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source} is not valid TOML: {exc}") from None
    table = doc.get("plans")
    if not isinstance(table, dict):
        raise ConfigError(f'{source} needs a [plans] table, e.g. plan_subscriber = ["role_subscriber"]')
    roles = {code: _roles(source, code, roles) for code, roles in table.items()}
    policy = _payment_policy(source, doc.get("payment_failed", {}))
    limits, guard = parse_limits(source, doc.get("limits", {})), parse_guard(source, doc.get("guard", {}))
    return PlanMap(roles, policy, _entitlements_enabled(source, doc.get("entitlements", {})), limits, guard)


def _entitlements_enabled(source: str, table: Any) -> bool:
    enabled = table.get("enabled", True) if isinstance(table, dict) else None
    if not isinstance(enabled, bool):
        raise ConfigError(f"{source}: [entitlements] must be a table with enabled = true or false")
    return enabled


def _payment_policy(source: str, table: Any) -> PaymentPolicy:
    if not isinstance(table, dict):
        raise ConfigError(f'{source}: [payment_failed] must be a table, e.g. action = "suspend"')
    action = table.get("action", "keep")
    if action not in PAYMENT_ACTIONS:
        raise ConfigError(f'{source}: [payment_failed] action must be "keep" or "suspend", not {action!r}')
    grants = _roles(source, "grants", table.get("grants", []), what="[payment_failed] grants",
                    example='grants = ["role_past_due"]')  # fmt: skip
    return PaymentPolicy(cast(PaymentAction, action), grants)


def _roles(source: str, code: str, roles: Any, *, what: str = "", example: str = "") -> tuple[str, ...]:
    if not isinstance(roles, list) or not all(isinstance(r, str) and r.strip() for r in roles):
        what, example = what or f"plan {code!r}", example or f'{code} = ["role_x"]'
        raise ConfigError(f"{source}: {what} must list role keys as strings, e.g. {example}")
    return tuple(r.strip() for r in roles)
