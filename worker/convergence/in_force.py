"""Which plans are in force for a billing customer, in as few Kinde reads as the pass can afford.

Two Kinde answers say it (docs/kinde-facts.md, "Billing"): the agreements (active = no `expires_on`, or
one still in the future) and the entitlements with `expand=plans`, whose `plans[]` lists the plans the
customer holds now (`code`, `subscribed_on`) beside the features. A pass that keeps the snapshot needs
the entitlements anyway, so with entitlements on their one read serves both, and the agreements are
read only when that answer cannot say which plans are in force:

* the entitlements read failed (a missing `read:billing_entitlements` scope, an outage): roles never
  wait on entitlements, so the pass reads the agreements, and keeps the stored entitlements;
* Kinde's answer carried no `plans` at all (`expand=plans` not honoured).

A 429 is not a failure to route around: it fails the pass, which retries after the cool-down.
With entitlements off, the agreements are the one read, as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from common.entitlements.customer import plans_of
from common.errors import RateLimitedError, ServiceError
from worker.kinde.api import EntitlementRows, KindeApi

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class InForce:
    codes: list[str]  # the plan codes in force, sorted
    agreements: list[dict[str, Any]] | None  # the active agreements, when the pass read them
    entitlements: EntitlementRows | None  # the entitlements answer, when the read succeeded


def read_in_force(kinde: KindeApi, customer_id: str, now: datetime, *, entitlements: bool) -> InForce:
    """From the entitlements when they are on and their answer lists plans, else from the agreements."""
    answer = _entitlements(kinde, customer_id) if entitlements else None
    if answer is not None and answer.plans_listed:
        return InForce(sorted({p.code for p in plans_of(answer.plans)}), None, answer)
    active = [a for a in kinde.agreements(customer_id) if is_active(a, now)]
    return InForce(active_plan_codes(active, now), active, answer)


def _entitlements(kinde: KindeApi, customer_id: str) -> EntitlementRows | None:
    try:
        answer = kinde.entitlements(customer_id)
    except RateLimitedError:
        raise
    except ServiceError as exc:
        log.warning("entitlements_read_failed", reason=exc.reason, error=str(exc), then="agreements")
        return None
    if not answer.plans_listed:
        log.warning("entitlements_without_plans", then="agreements", hint="Kinde ignored expand=plans")
    return answer


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
