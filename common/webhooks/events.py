"""Which Kinde events we act on, and tolerant readers for the fields they may carry.

The `data` block of Kinde's billing (`customer.*`) events is undocumented (reference
docs/kinde-facts.md, Event payloads): components written by Kinde read the customer id from `data.customer_id`,
`data.customer.id` or a top-level `customer_id`, and the plan from `data.plan.code`,
`data.plan.key` or `data.plan_code`. Every reader here accepts every documented variant
rather than guessing one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

USER_EVENTS = frozenset({"user.created", "user.updated", "user.deleted"})
ORG_EVENTS = frozenset({"organization.created", "organization.updated", "organization.deleted"})
BILLING_PREFIX = "customer."
# Kinde's billing catalogue (docs/kinde-facts.md, Event payloads); every one of them triggers a converge.
BILLING_EVENTS = frozenset(
    {
        "customer.agreement_cancelled",
        "customer.agreement_created",
        "customer.invoice_overdue",
        "customer.meter_usage_updated",
        "customer.payment_failed",
        "customer.payment_succeeded",
        "customer.plan_assigned",
        "customer.plan_changed",
        "customer.plan_created",
    }
)
# What the Kinde webhook must be registered for (`rolesync kinde register-webhook`, `rolesync doctor`).
SUBSCRIBED_EVENTS = tuple(sorted(BILLING_EVENTS | USER_EVENTS | ORG_EVENTS))


def is_acted_on(event_type: str) -> bool:
    """Every `customer.*` billing event, plus the user/org events that teach us customer links."""
    return event_type.startswith(BILLING_PREFIX) or event_type in USER_EVENTS or event_type in ORG_EVENTS


def is_billing(event_type: str) -> bool:
    return event_type.startswith(BILLING_PREFIX)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _nested(data: Mapping[str, Any], outer: str, inner: str) -> str | None:
    obj = data.get(outer)
    return _str(obj.get(inner)) if isinstance(obj, Mapping) else None


def _data(claims: Mapping[str, Any]) -> Mapping[str, Any]:
    data = claims.get("data")
    return data if isinstance(data, Mapping) else {}


def _first(*candidates: str | None) -> str | None:
    return next((c for c in candidates if c), None)


def customer_id_of(claims: Mapping[str, Any]) -> str | None:
    data = _data(claims)
    return _first(
        _str(data.get("customer_id")),
        _nested(data, "customer", "id"),
        _nested(data, "customer", "customer_id"),
        _nested(data, "billing", "customer_id"),
        _str(claims.get("customer_id")),
    )


def user_id_of(claims: Mapping[str, Any]) -> str | None:
    data = _data(claims)
    return _first(
        _str(data.get("user_id")),
        _nested(data, "user", "id"),
        _nested(data, "customer", "user_id"),
    )


def org_code_of(claims: Mapping[str, Any]) -> str | None:
    data = _data(claims)
    return _first(
        _str(data.get("org_code")),
        _str(data.get("organization_code")),
        _nested(data, "organization", "code"),
        _nested(data, "customer", "org_code"),
    )


def deleted_org_code_of(claims: Mapping[str, Any]) -> str | None:
    """`organization.deleted` "carries only code" (docs/kinde-facts.md, Event payloads): nested or flat."""
    return org_code_of(claims) or _str(_data(claims).get("code"))


def plan_code_of(claims: Mapping[str, Any]) -> str | None:
    """Informational only: roles are converged from Kinde's current agreements, never from this."""
    data = _data(claims)
    return _first(
        _nested(data, "plan", "code"),
        _nested(data, "plan", "key"),
        _str(data.get("plan_code")),
        _str(data.get("plan_id")),
    )


def epoch_of(raw: object) -> float | None:
    """An event time as Kinde writes it (ISO 8601, `Z` or an offset) in epoch seconds; None if absent or unreadable."""
    if not raw:
        return None
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
