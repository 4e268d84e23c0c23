"""`--seed-file scenario.toml`: the tenant, faults and limits a sandbox starts with (and resets to).

[rate_limit]
rate = 20            # requests per second over /api/v1; 0 = off
burst = 40
[faults."*"]         # pattern -> FaultRule fields (see faults.py)
latency_ms = 5
[switches]
users_billing_expand = false     # GET /users?expand=billing -> 400 INVALID_EXPAND_VALUES
orgs_billing_expand = true       # GET /organizations?expand=billing lists billing (default: never listed)
scopes = ["read:users", "read:roles"]  # granted to the M2M app (default: all)
[plans.plan_client]
features = { seats = 5 }         # entitlements for GET /billing/entitlements
[[roles]]
key = "role_extra"
name = "Extra"
[[orgs]]
code = "org_acme"
name = "Acme"
customer = true
plan = "plan_team"
[[users]]
id = "kp_alice"                  # optional; generated when absent
email = "alice@example.test"
org = "org_acme"                 # default org when absent
customer = true
plan = "plan_client"
roles = ["role_admin"]
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.errors import ConfigError
from sandbox.faults import FaultRule
from sandbox.tenant import Tenant


@dataclass(frozen=True)
class Scenario:
    raw: dict[str, Any] = field(default_factory=dict)
    faults: dict[str, FaultRule] = field(default_factory=dict)
    rate: float = 0.0
    burst: int = 1
    users_billing_expand: bool = True
    orgs_billing_expand: bool = False
    scopes: tuple[str, ...] | None = None


def load_scenario(path: Path | None) -> Scenario:
    if path is None:
        return Scenario()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        return _parse(raw)
    except (OSError, tomllib.TOMLDecodeError, ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"seed file {path}: {exc}") from None


def _parse(raw: dict[str, Any]) -> Scenario:
    limit, switches = raw.get("rate_limit", {}), raw.get("switches", {})
    scopes = switches.get("scopes")
    return Scenario(
        raw=raw,
        faults={pattern: FaultRule.parse(rule) for pattern, rule in raw.get("faults", {}).items()},
        rate=float(limit.get("rate", 0.0)),
        burst=int(limit.get("burst", 1)),
        users_billing_expand=bool(switches.get("users_billing_expand", True)),
        orgs_billing_expand=bool(switches.get("orgs_billing_expand", False)),
        scopes=tuple(str(s) for s in scopes) if scopes is not None else None,
    )


def seed_tenant(tenant: Tenant, scenario: Scenario) -> None:
    """Add the scenario's roles, plans, orgs and users (with their plans and roles) to `tenant`."""
    raw = scenario.raw
    for role in raw.get("roles", []):
        tenant.add_role(str(role["key"]), str(role.get("name", role["key"])))
    for code, plan in raw.get("plans", {}).items():
        tenant.define_plan(code, {str(k): int(v) for k, v in plan.get("features", {}).items()})
    for org in raw.get("orgs", []):
        _seed_org(tenant, org)
    for user in raw.get("users", []):
        _seed_user(tenant, user)


def _seed_org(tenant: Tenant, spec: dict[str, Any]) -> None:
    org = tenant.create_org(str(spec["name"]), with_customer=bool(spec.get("customer", False)), code=spec.get("code"))
    if spec.get("plan") and org.customer_id:
        tenant.change_plan(org.customer_id, str(spec["plan"]))


def _seed_user(tenant: Tenant, spec: dict[str, Any]) -> None:
    user = tenant.create_user(
        spec.get("email"), spec.get("org"), with_customer=bool(spec.get("customer", True)), user_id=spec.get("id")
    )
    if spec.get("plan") and user.customer_id:
        tenant.change_plan(user.customer_id, str(spec["plan"]))
    for key in spec.get("roles", []):
        tenant.grant(user.org_codes[0], user.id, tenant.role_by_key(str(key)).id)
