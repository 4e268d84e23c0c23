"""`rolesync init`'s work: check the M2M credentials and scopes, read the tenant's roles and plan codes,
propose a plans.toml mapping, and write it with an env file template.

Kinde's Management API has no plan listing: the plan codes offered are those found on customers'
agreements (the customers doctor reads: linked ones and those `GET /users?expand=billing` names), and
the user adds any other. A plan code is proposed the role whose key shares its name once the `plan_` /
`role_` prefixes are taken off (`plan_client` → `role_client`), else the closest key, else none; only
the roles the user keeps become managed. The file is checked by the service's own parser before it
is written (common/plans/mapping.py).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from common.plans.mapping import parse_plans
from common.settings import Settings
from doctor.access import KindeAccess, connect
from doctor.roles import plan_codes_in_use
from doctor.scopes import ScopeReport, check_scopes

_PREFIXES = ("plan_", "plan-", "role_", "role-")
NO_PLAN_LISTING = ("Kinde's Management API has no plan listing: these are the plan codes found on customers' "
                   "agreements; add any other plan code yourself")  # fmt: skip


@dataclass(frozen=True)
class Tenant:
    """What init reads from Kinde with the credentials given."""

    access: KindeAccess
    scopes: ScopeReport
    roles: list[str]  # role keys
    plan_codes: list[str]  # found on customers' agreements


def read_tenant(settings: Settings, http: httpx.Client) -> Tenant:
    """A token (PermanentError naming Kinde's refusal), each scope, the roles, the plan codes in use."""
    access = connect(settings, http)
    scopes = check_scopes(access.api, access.token_scopes, entitlements=True)
    roles = sorted(str(r["key"]) for r in access.api.roles() if r.get("key"))
    return Tenant(access, scopes, roles, sorted(plan_codes_in_use(access.api, billed_customers(access))))


def billed_customers(access: KindeAccess) -> list[str]:
    found = (u.get("billing") for u in access.api.list_users(expand_billing=True))
    return sorted({str(b["customer_id"]) for b in found if isinstance(b, dict) and b.get("customer_id")})


def _stem(key: str) -> str:
    lowered = key.lower()
    return next((lowered[len(p) :] for p in _PREFIXES if lowered.startswith(p)), lowered)


def propose(plan_codes: Iterable[str], roles: Iterable[str]) -> dict[str, list[str]]:
    """Each plan code with the role proposed for it ([] when none fits)."""
    by_stem = {_stem(r): r for r in roles}
    found: dict[str, list[str]] = {}
    for code in plan_codes:
        close = difflib.get_close_matches(_stem(code), list(by_stem), n=1, cutoff=0.75)
        found[code] = [by_stem[close[0]]] if close else []
    return found


def plans_toml(mapping: Mapping[str, list[str]]) -> str:
    """The `[plans]` table; a plan mapped to no role is left out (it grants nothing anyway)."""
    lines = ["# Written by `rolesync init`: plan code -> the managed roles it grants (README, The plans file).",
             "[plans]"]  # fmt: skip
    lines += [f"{json.dumps(code)} = {json.dumps(sorted(roles))}" for code, roles in sorted(mapping.items()) if roles]
    text = "\n".join(lines) + "\n"
    parse_plans(text)  # ConfigError rather than a file the service would refuse
    return text


def env_template(settings: Settings, *, plans_path: Path, webhook_url: str) -> str:
    """The settings init learned, as an env file; the secrets left for the user to fill from their store."""
    rows = [
        "# Written by `rolesync init`. Secrets are left empty: fill them from your secret store.",
        f"KINDE_DOMAIN={settings.kinde_domain}",
        f"KINDE_CLIENT_ID={settings.kinde_client_id}",
        "KINDE_CLIENT_SECRET=",
        "REDIS_URL=",
        f"ROLESYNC_PLANS={plans_path}",
        f"ROLESYNC_WEBHOOK_URL={webhook_url}",
        "# shadow first on a tenant whose users already hold roles (README, Adopting on an existing tenant)",
        "ROLESYNC_MODE=shadow",
    ]
    return "\n".join(rows) + "\n"
