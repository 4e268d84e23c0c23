"""Management API JSON shapes (docs/kinde-facts.md, Management API), built from the tenant's records."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from sandbox.model import Agreement, Org, Role, User, Webhook
from sandbox.tenant import Tenant

OK: dict[str, Any] = {"code": "OK", "message": "Success"}


def role_json(role: Role) -> dict[str, Any]:
    return {
        "id": role.id,
        "key": role.key,
        "name": role.name,
        "description": role.description,
        "is_default_role": role.is_default_role,
    }


def user_role_json(role: Role) -> dict[str, Any]:
    return {"id": role.id, "key": role.key, "name": role.name}


def _user_common(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "provided_id": None,
        "phone": None,
        "username": None,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "is_suspended": False,
        "picture": None,
        "total_sign_ins": 0,
        "failed_sign_ins": 0,
        "last_signed_in": None,
        "created_on": user.created_on,
    }


def _expansions(user: User, expand: set[str]) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if "organizations" in expand:
        extra["organizations"] = list(user.org_codes)
    if "identities" in expand:
        extra["identities"] = [{"type": "email", "identity": user.email}]
    if "billing" in expand:
        extra["billing"] = {"customer_id": user.customer_id} if user.customer_id else None
    return extra


def user_json(user: User, expand: set[str]) -> dict[str, Any]:
    """`GET /api/v1/user`: a top-level object, no `code`/`message` wrapper."""
    return {**_user_common(user), "preferred_email": user.email, **_expansions(user, expand)}


def users_item_json(user: User, expand: set[str]) -> dict[str, Any]:
    return {**_user_common(user), "email": user.email, **_expansions(user, expand)}


def org_json(org: Org) -> dict[str, Any]:
    return {
        "code": org.code,
        "name": org.name,
        "handle": org.handle,
        "is_default": org.is_default,
        "external_id": org.external_id,
        "is_auto_membership_enabled": False,
        "created_on": org.created_on,
    }


def org_billing_json(org: Org, tenant: Tenant) -> dict[str, Any] | None:
    if org.customer_id is None:
        return None
    active = tenant.active_agreements(org.customer_id)
    return {
        "billing_customer_id": org.customer_id,
        "agreements": [{"plan_code": a.plan_code, "agreement_id": a.id} for a in active],
    }


def org_user_json(user: User, role_keys: list[str]) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "full_name": f"{user.first_name} {user.last_name}".strip(),
        "first_name": user.first_name,
        "last_name": user.last_name,
        "picture": None,
        "joined_on": user.created_on,
        "last_accessed_on": None,
        "roles": role_keys,
    }


def _month_after(iso: str) -> str:
    start = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ")
    return (start + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")


def entitlement_id(agreement: Agreement, feature: str) -> str:
    """Stable across calls, as a real entitlement id is."""
    return "entitlement_" + hashlib.sha256(f"{agreement.id}:{feature}".encode()).hexdigest()[:32]


def agreement_json(agreement: Agreement, features: dict[str, int]) -> dict[str, Any]:
    return {
        "id": agreement.id,
        "plan_code": agreement.plan_code,
        "expires_on": agreement.expires_on,
        "billing_group_id": agreement.billing_group_id,
        "current_period_start": agreement.created_on,
        "current_period_end": _month_after(agreement.created_on),
        "entitlements": [{"feature_code": f, "entitlement_id": entitlement_id(agreement, f)} for f in features],
    }


def entitlement_json(agreement: Agreement, feature: str, limit: int) -> dict[str, Any]:
    return {
        "id": entitlement_id(agreement, feature),
        "fixed_charge": None,
        "price_name": f"{agreement.plan_code} {feature}",
        "unit_amount": None,
        "feature_code": feature,
        "feature_name": feature.replace("_", " ").title(),
        "entitlement_limit_max": limit,
        "entitlement_limit_min": None,
    }


def webhook_json(webhook: Webhook) -> dict[str, Any]:
    return {
        "id": webhook.id,
        "name": webhook.name,
        "endpoint": webhook.endpoint,
        "description": webhook.description,
        "event_types": list(webhook.event_types),
        "created_on": webhook.created_on,
    }
