"""An optional JSON snapshot of the tenant, so a restarted sandbox keeps its users, roles and plans."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from common.errors import ConfigError
from sandbox.model import Agreement, Customer, Org, Role, User, Webhook
from sandbox.tenant import Tenant


def dump(tenant: Tenant) -> dict[str, Any]:
    return {
        "roles": [asdict(r) for r in tenant.roles.values()],
        "orgs": [asdict(o) for o in tenant.orgs.values()],
        "users": [asdict(u) for u in tenant.users.values()],
        "customers": [asdict(c) for c in tenant.customers.values()],
        "agreements": [asdict(a) for a in tenant.agreements.values()],
        "assignments": [[org, user, roles] for (org, user), roles in tenant.assignments.items()],
        "plans": tenant.plans,
        "webhooks": [asdict(w) for w in tenant.webhooks.values()],
    }


def restore(data: dict[str, Any]) -> Tenant:
    return Tenant(
        roles={r["id"]: Role(**r) for r in data["roles"]},
        orgs={o["code"]: Org(**o) for o in data["orgs"]},
        users={u["id"]: User(**u) for u in data["users"]},
        customers={c["id"]: Customer(**c) for c in data["customers"]},
        agreements={a["id"]: Agreement(**a) for a in data["agreements"]},
        assignments={(org, user): list(roles) for org, user, roles in data["assignments"]},
        plans=dict(data.get("plans", {})),
        webhooks={w["id"]: Webhook(**w) for w in data.get("webhooks", [])},
    )


def save(tenant: Tenant, path: Path) -> None:
    # Write then rename, so a crash mid-write never leaves a half snapshot behind.
    partial = path.with_suffix(path.suffix + ".tmp")
    partial.write_text(json.dumps(dump(tenant), indent=1), encoding="utf-8")
    os.replace(partial, path)


def load(path: Path) -> Tenant | None:
    if not path.exists():
        return None
    try:
        return restore(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"snapshot {path} is not a sandbox snapshot: {exc}") from None
