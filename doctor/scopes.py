"""Which Management API scopes the M2M app lacks, found the way Kinde reports them.

Each endpoint the service reads is called once, read-only, with ids that match nothing (the
worker's scope probes, worker/sweeps/scope_probe.py): a 403 names the missing scope, any other answer
(404 and the like) means the scope is granted. Doctor does not write, so write scopes are read
from the token's own `scope` claim. The webhook scopes serve only set-up (doctor, register-webhook) and so warn.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from worker.kinde.api import Call, HttpxKindeApi
from worker.sweeps.scope_probe import ENTITLEMENTS_PROBE, READ_PROBES, Probe, refused_scope

WRITE_SCOPES = ("create:organization_user_roles", "delete:organization_user_roles")
SETUP_WRITE_SCOPES = ("create:webhooks", "update:webhooks")
SERVICE_PROBES = READ_PROBES  # the worker's own probes, so doctor and the scope probe agree
WEBHOOKS_PROBE = Probe("GET /webhooks", lambda k: k.send(Call("GET", "/api/v1/webhooks", "GET /webhooks")))


@dataclass(frozen=True)
class ScopeReport:
    missing: dict[str, str]  # scope -> how we know ("403 on GET /roles", "not in the token")
    unknown: tuple[str, ...]  # write scopes we could not see either way
    setup_missing: dict[str, str]


def _probe_all(probes: Iterable[Probe], api: HttpxKindeApi) -> dict[str, str]:
    found: dict[str, str] = {}
    for probe in probes:
        scope = refused_scope(api, probe)
        if scope:
            found.setdefault(scope, f"403 on {probe.endpoint}")
    return found


def _from_claims(scopes: Iterable[str], granted: frozenset[str] | None) -> dict[str, str]:
    return {} if granted is None else {s: "not in the token's scopes" for s in scopes if s not in granted}


def check_scopes(api: HttpxKindeApi, token_scopes: frozenset[str] | None, *, entitlements: bool = True) -> ScopeReport:
    """`entitlements`: plans.toml reads entitlements, so `read:billing_entitlements` is the service's too."""
    probes = (*SERVICE_PROBES, ENTITLEMENTS_PROBE) if entitlements else SERVICE_PROBES
    missing = {**_probe_all(probes, api), **_from_claims(WRITE_SCOPES, token_scopes)}
    setup = {**_probe_all([WEBHOOKS_PROBE], api), **_from_claims(SETUP_WRITE_SCOPES, token_scopes)}
    unknown = () if token_scopes is not None else WRITE_SCOPES + SETUP_WRITE_SCOPES
    return ScopeReport(missing, unknown, setup)
