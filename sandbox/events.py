"""The webhook claims a tenant emits, in Kinde's envelope (`type`, `event_id`, `timestamp`, `source`, `data`).

User and organization payloads follow Kinde's documented shapes (docs/kinde-facts.md, Event payloads). The billing
`data` block is undocumented, so every billing event is built in one of several variants seen in
Kinde-authored code; "mix" picks one per event with a seeded random, so a consumer tuned to a
single guess fails the tests instead of failing in production.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox import ids
from sandbox.clock import now_iso
from sandbox.model import Customer, Org, User
from sandbox.tenant import PlanChange

Event = tuple[str, dict[str, Any]]  # (type, data)


def envelope(
    event_type: str, data: dict[str, Any], *, event_id: str | None = None, timestamp: str | None = None
) -> dict[str, Any]:
    return {
        "type": event_type,
        "event_id": event_id or ids.event_id(),
        "timestamp": timestamp or now_iso(),
        "source": "admin",
        "data": data,
    }


def user_payload(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "username": None,
        "phone": None,
        "is_password_reset_requested": False,
        "is_suspended": False,
        "organizations": [{"code": code, "roles": None, "permissions": None} for code in user.org_codes],
    }


def user_created(user: User) -> Event:
    return "user.created", {"user": user_payload(user)}


def user_updated(user: User) -> Event:
    """Sent when a user's organizations change too: the payload lists them, as Kinde's does."""
    return "user.updated", {"user": user_payload(user)}


def user_deleted(user: User) -> Event:
    return "user.deleted", {"user": {"id": user.id}}


def organization_created(org: Org) -> Event:
    return "organization.created", {
        "organization": {"code": org.code, "name": org.name, "handle": org.handle, "external_id": org.external_id}
    }


def organization_deleted(org: Org) -> Event:
    return "organization.deleted", {"organization": {"code": org.code}}


def _owner(customer: Customer) -> dict[str, str]:
    return {"user_id": customer.owner_id} if customer.owner_kind == "user" else {"org_code": customer.owner_id}


BillingShape = Callable[[Customer, str, str], dict[str, Any]]

BILLING_VARIANTS: dict[str, BillingShape] = {
    # kinde-convex-billing reads data.customer_id and a nested data.plan.code
    "customer_id": lambda c, plan, agr: {
        "customer_id": c.id,
        "plan": {"code": plan, "name": plan},
        "agreement_id": agr,
    },
    # kinde-convex-agent-billing reads data.customer.id
    "customer_object": lambda c, plan, agr: {"customer": {"id": c.id}, "plan_code": plan, "agreement_id": agr},
    "flat": lambda c, plan, agr: {"customer_id": c.id, "plan_code": plan, "agreement_id": agr},
    "with_owner": lambda c, plan, agr: {"customer_id": c.id, "plan": {"code": plan}, "agreement_id": agr, **_owner(c)},
}
VARIANT_CHOICES = ("mix", *BILLING_VARIANTS)


@dataclass
class VariantPicker:
    setting: str = "mix"
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def pick(self) -> BillingShape:
        name = self.rng.choice(sorted(BILLING_VARIANTS)) if self.setting == "mix" else self.setting
        return BILLING_VARIANTS[name]


def plan_change_events(change: PlanChange, picker: VariantPicker) -> list[Event]:
    """Cancelled agreements first, then the new agreement and the plan assignment or change."""
    events = [
        ("customer.agreement_cancelled", picker.pick()(change.customer, old.plan_code, old.id))
        for old in change.cancelled
    ]
    if change.created is not None:
        new = change.created
        kind = "customer.plan_changed" if change.was_subscribed else "customer.plan_assigned"
        events.append(("customer.agreement_created", picker.pick()(change.customer, new.plan_code, new.id)))
        events.append((kind, picker.pick()(change.customer, new.plan_code, new.id)))
    return events


PAYMENT_EVENTS = {"failed": "customer.payment_failed", "succeeded": "customer.payment_succeeded"}


def payment_event(customer: Customer, outcome: str, plan_code: str, agreement_id: str, picker: VariantPicker) -> Event:
    """A payment outcome in the customer's billing shape; it changes no agreement (Kinde's dunning does that)."""
    return PAYMENT_EVENTS[outcome], picker.pick()(customer, plan_code, agreement_id)
