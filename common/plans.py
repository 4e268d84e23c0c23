"""The plan → roles mapping read from plans.toml.

The roles named anywhere in `[plans]` are the *managed* roles: the service adds and removes only
those, so a role given by hand (an admin role, say) survives every plan change.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.errors import ConfigError


@dataclass(frozen=True)
class PlanMap:
    roles_by_plan: Mapping[str, tuple[str, ...]]

    @property
    def managed_roles(self) -> frozenset[str]:
        return frozenset(role for roles in self.roles_by_plan.values() for role in roles)

    def desired_roles(self, plan_codes: Iterable[str]) -> frozenset[str]:
        """The managed roles the given active plans grant; unknown plan codes grant nothing."""
        return frozenset(role for code in plan_codes for role in self.roles_by_plan.get(code, ()))

    def unknown_plans(self, plan_codes: Iterable[str]) -> frozenset[str]:
        return frozenset(code for code in plan_codes if code not in self.roles_by_plan)


def load_plans(path: Path) -> PlanMap:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"plans file {path} not found (set ROLESYNC_PLANS or create it)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"plans file {path} cannot be read: {exc}") from None
    return parse_plans(text, source=str(path))


def parse_plans(text: str, *, source: str = "plans.toml") -> PlanMap:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source} is not valid TOML: {exc}") from None
    table = doc.get("plans")
    if not isinstance(table, dict):
        raise ConfigError(f'{source} needs a [plans] table, e.g. plan_subscriber = ["role_subscriber"]')
    return PlanMap({code: _roles(source, code, roles) for code, roles in table.items()})


def _roles(source: str, code: str, roles: Any) -> tuple[str, ...]:
    if not isinstance(roles, list) or not all(isinstance(r, str) and r.strip() for r in roles):
        raise ConfigError(f'{source}: plan {code!r} must list role keys as strings, e.g. {code} = ["role_x"]')
    return tuple(r.strip() for r in roles)
