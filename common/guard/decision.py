"""The plan-selection guard's decision: a pure function of the requested plan's limits and the metrics read.

A move is refused when a metric is above the requested plan's limit, with one reason per such metric
("reduce org_members to 3 or fewer (now 5)"). A plan without limits allows. A metric nobody has
reported counts as within its limit (there is nothing to refuse on). A metric that could not be read
in time (the member count Kinde has not answered) applies `[guard] on_error`, unless a metric that
was read already refuses. The value of a usage metric is the newest reading of the app's report
(`PUT /v1/customers/{id}/usage/{metric}`) and the meter (`customer.meter_usage_updated`, whose
feature_code names the metric); a meter reading of kind `delta` is no total, so it is not used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from common.plans.limits import GuardPolicy, Limits
from common.plans.mapping import PlanMap

MEMBERS_SOURCE, METER_SOURCE, APP_SOURCE = "kinde_members", "meter", "app"


@dataclass(frozen=True)
class Observed:
    """A metric's current value and where it came from; `value` None when nothing was ever reported."""

    value: float | None
    source: str | None = None
    at: float | None = None


@dataclass(frozen=True)
class Decision:
    allow: bool
    message: str
    reasons: tuple[str, ...]
    outcome: str  # OUTCOMES
    checked: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # metric -> {limit, value, source}

    def answer(self) -> dict[str, Any]:
        """The body the workflow reads (the contract: allow, message, reasons)."""
        return {"allow": self.allow, "message": self.message, "reasons": list(self.reasons)}


# Every outcome, and why it was reached (docs/on-call.md, Guard outcomes).
OUTCOMES = ("allowed", "refused", "no_limits", "unknown_customer", "unknown_plan", "fallback_allow", "fallback_deny")


def allowed(outcome: str) -> Decision:
    return Decision(True, "", (), outcome)


def before_reading(plans: PlanMap, plan_code: str, customer_known: bool) -> Decision | None:
    """The decision made before any metric is read, the same for the API and `rolesync guard check`.

    A customer nobody can place is allowed (`unknown_customer`); a plan code plans.toml names neither
    under `[plans]` nor `[limits]` is allowed too (`unknown_plan`: a mistyped code, worth a look).
    None: read the requested plan's metrics and `decide`.
    """
    if not customer_known:
        return allowed("unknown_customer")
    if plan_code not in plans.roles_by_plan and plan_code not in plans.limits:
        return allowed("unknown_plan")
    return None


def decide(plan_code: str, limits: Limits, policy: GuardPolicy, observed: Mapping[str, Observed],
           unreadable: frozenset[str] = frozenset()) -> Decision:  # fmt: skip
    wanted = limits.get(plan_code) or {}
    if not wanted:
        return allowed("no_limits")
    checked = {m: _checked(limit, observed.get(m), m in unreadable) for m, limit in sorted(wanted.items())}
    reasons = tuple(_reason(m, c) for m, c in checked.items() if _over(c))
    name = policy.plan_name(plan_code)
    if reasons:
        return Decision(False, f"To move to {name} you first need to:", reasons, "refused", checked)
    if unreadable & wanted.keys():
        return fallback(name, policy, checked)
    return Decision(True, "", (), "allowed", checked)


def fallback(plan_name: str, policy: GuardPolicy, checked: Mapping[str, Mapping[str, Any]] | None = None) -> Decision:
    """The answer when a metric could not be read in time: `[guard] on_error`."""
    if policy.on_error == "allow":
        return Decision(True, "", (), "fallback_allow", checked or {})
    message = f"We could not check the limits of {plan_name} just now; please try again in a moment."
    return Decision(False, message, (), "fallback_deny", checked or {})


def _checked(limit: int, seen: Observed | None, unreadable: bool) -> dict[str, Any]:
    value = None if seen is None else seen.value
    return {"limit": limit, "value": value, "source": None if seen is None else seen.source, "unreadable": unreadable}


def _over(checked: Mapping[str, Any]) -> bool:
    return checked["value"] is not None and checked["value"] > checked["limit"]


def _reason(metric: str, checked: Mapping[str, Any]) -> str:
    return f"reduce {metric} to {checked['limit']} or fewer (now {_number(checked['value'])})"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def usage_value(metric: str, meter: Mapping[str, Mapping[str, Any]], app: Mapping[str, Mapping[str, Any]]) -> Observed:
    """The newest total of a usage metric: the app's report or the meter's reading, whichever is later."""
    found = [Observed(_float(r.get("value")), APP_SOURCE, _float(r.get("at"))) for r in [app.get(metric)] if r]
    reading = meter.get(metric)
    if reading and reading.get("kind") != "delta":
        found.append(Observed(_float(reading.get("value")), METER_SOURCE, _float(reading.get("at"))))
    known = [o for o in found if o.value is not None]
    return max(known, key=lambda o: o.at or 0.0) if known else Observed(None)


def _float(raw: Any) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    return float(raw)
