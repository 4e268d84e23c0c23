"""The Management API scope each endpoint the service calls needs, by the endpoint's metric label.

Kinde's 403 names the scope only sometimes (SCOPE_MISSING does, INVALID_CREDENTIALS does not), so a
forbidden call falls back on this table to tell on-call what to grant. Doctor lists the same scopes.
"""

from __future__ import annotations

SCOPE_OF = {
    "GET /user": "read:users",
    "GET /users": "read:users",
    "GET /organization": "read:organizations",
    "GET /organizations": "read:organizations",
    "GET /organizations/{org}/users": "read:organization_users",
    "GET /roles": "read:roles",
    "GET /organizations/{org}/users/{user}/roles": "read:organization_user_roles",
    "POST /organizations/{org}/users/{user}/roles": "create:organization_user_roles",
    "DELETE /organizations/{org}/users/{user}/roles/{role}": "delete:organization_user_roles",
    "GET /billing/agreements": "read:billing_agreements",
    "GET /billing/entitlements": "read:billing_entitlements",
    "GET /webhooks": "read:webhooks",
}


def scope_for(endpoint: str) -> str | None:
    return SCOPE_OF.get(endpoint)
