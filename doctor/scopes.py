"""Which Management API scopes the M2M app lacks, found the way Kinde reports them.

Each endpoint the service reads is called once, read-only, with ids that match nothing: a 403
names the missing scope (kinde-api.md §3), any other answer (404 and the like) means the scope is
granted. Write scopes cannot be probed without writing, so they are read from the token's own
`scope` claim. The webhook scopes serve only set-up (doctor, register-webhook) and so warn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from common.errors import PermanentError
from worker.kinde import Call, HttpxKindeApi

NO_USER = "kp_rolesync_doctor_probe"
NO_ORG = "org_rolesync_doctor_probe"
NO_CUSTOMER = "customer_rolesync_doctor_probe"
WRITE_SCOPES = ("create:organization_user_roles", "delete:organization_user_roles")
SETUP_WRITE_SCOPES = ("create:webhooks", "update:webhooks")
_FORBIDDEN_HINTS = ("SCOPE", "FORBIDDEN", "HTTP_403", "ACCESS_DENIED")

Probe = Callable[[HttpxKindeApi], object]


@dataclass(frozen=True)
class ReadProbe:
    scope: str  # what Kinde's spec says the endpoint needs; used when the 403 names none
    endpoint: str
    call: Probe


def _first(items: Iterable[object]) -> object:
    return next(iter(items), None)


SERVICE_PROBES = (
    ReadProbe("read:users", "GET /user", lambda k: k.get_user(NO_USER)),
    ReadProbe("read:users", "GET /users", lambda k: _first(k.list_users(expand_billing=False))),
    ReadProbe("read:organizations", "GET /organizations", lambda k: _first(k.list_organizations(expand_billing=False))),
    ReadProbe("read:organizations", "GET /organization", lambda k: k.get_organization(NO_ORG)),
    ReadProbe("read:organization_users", "GET /organizations/{org}/users", lambda k: _first(k.org_members(NO_ORG))),
    ReadProbe("read:roles", "GET /roles", lambda k: k.roles()),
    ReadProbe(
        "read:organization_user_roles",
        "GET /organizations/{org}/users/{user}/roles",
        lambda k: k.user_roles(NO_ORG, NO_USER),
    ),
    ReadProbe("read:billing_agreements", "GET /billing/agreements", lambda k: k.agreements(NO_CUSTOMER)),
)
WEBHOOKS_PROBE = ReadProbe(
    "read:webhooks", "GET /webhooks", lambda k: k.send(Call("GET", "/api/v1/webhooks", "GET /webhooks"))
)


@dataclass(frozen=True)
class ScopeReport:
    missing: dict[str, str]  # scope -> how we know ("403 on GET /roles", "not in the token")
    unknown: tuple[str, ...]  # write scopes we could not see either way
    setup_missing: dict[str, str]


def missing_scope_of(probe: ReadProbe, api: HttpxKindeApi) -> str | None:
    """The scope Kinde refused the probe for, or None when the endpoint answered (even 404)."""
    try:
        probe.call(api)
    except PermanentError as exc:
        if exc.reason.startswith("missing_scope:"):
            return exc.reason.split(":", 1)[1]
        if any(hint in exc.reason.upper() for hint in _FORBIDDEN_HINTS):
            return probe.scope
    return None


def _probe_all(probes: Iterable[ReadProbe], api: HttpxKindeApi) -> dict[str, str]:
    found: dict[str, str] = {}
    for probe in probes:
        scope = missing_scope_of(probe, api)
        if scope:
            found.setdefault(scope, f"403 on {probe.endpoint}")
    return found


def _from_claims(scopes: Iterable[str], granted: frozenset[str] | None) -> dict[str, str]:
    return {} if granted is None else {s: "not in the token's scopes" for s in scopes if s not in granted}


def check_scopes(api: HttpxKindeApi, token_scopes: frozenset[str] | None) -> ScopeReport:
    missing = {**_probe_all(SERVICE_PROBES, api), **_from_claims(WRITE_SCOPES, token_scopes)}
    setup = {**_probe_all([WEBHOOKS_PROBE], api), **_from_claims(SETUP_WRITE_SCOPES, token_scopes)}
    unknown = () if token_scopes is not None else WRITE_SCOPES + SETUP_WRITE_SCOPES
    return ScopeReport(missing, unknown, setup)
