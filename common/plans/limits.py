"""Plan limits and the plan-selection guard's policy, read from plans.toml (part of common/plans/mapping.py's loader).

```toml
[limits.free]            # a move to plan `free` is refused while a metric is above its limit
org_members = 3          # counted from Kinde (the org's member cache)
projects = 10            # app-reported usage or a meter's feature_code (customer.meter_usage_updated)

[guard]
on_error = "allow"       # or "deny": the answer when a metric cannot be read in time
member_refresh_s = 300   # a member count older than this is answered and refreshed in the background
member_wait_s = 1.0      # how long a decision waits for a first member count before on_error applies
plan_names = { free = "Free" }   # shown in the refusal message; the code otherwise
```

A plan without a `[limits.*]` table allows every move to it. Limits never change which roles a plan
grants, so they are not part of the mapping's fingerprint (a limit change asks for no sweep).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from common.errors import ConfigError

OnError = Literal["allow", "deny"]
ON_ERRORS: tuple[OnError, ...] = ("allow", "deny")
METRIC_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
ORG_MEMBERS = "org_members"


@dataclass(frozen=True)
class GuardPolicy:
    on_error: OnError = "allow"
    member_refresh_s: float = 300.0
    member_wait_s: float = 1.0
    plan_names: Mapping[str, str] = field(default_factory=dict)

    def plan_name(self, code: str) -> str:
        return self.plan_names.get(code, code)


Limits = Mapping[str, Mapping[str, int]]  # plan code -> metric -> the most allowed on that plan


def parse_limits(source: str, table: Any) -> Limits:
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [limits] must hold one table per plan, e.g. [limits.free] org_members = 3")
    return {str(code): _plan_limits(source, str(code), found) for code, found in table.items()}


def _plan_limits(source: str, code: str, table: Any) -> dict[str, int]:
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [limits.{code}] must be a table, e.g. org_members = 3")
    for metric, limit in table.items():
        if not METRIC_NAME.match(metric):
            raise ConfigError(f"{source}: [limits.{code}] metric {metric!r} must be letters, digits, _ . : or -")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ConfigError(f"{source}: [limits.{code}] {metric} must be a whole number >= 0, not {limit!r}")
    return dict(table)


def parse_guard(source: str, table: Any) -> GuardPolicy:
    if not isinstance(table, dict):
        raise ConfigError(f'{source}: [guard] must be a table, e.g. on_error = "allow"')
    on_error = table.get("on_error", "allow")
    if on_error not in ON_ERRORS:
        raise ConfigError(f'{source}: [guard] on_error must be "allow" or "deny", not {on_error!r}')
    names = table.get("plan_names", {})
    if not isinstance(names, dict) or not all(isinstance(v, str) and v for v in names.values()):
        raise ConfigError(f'{source}: [guard] plan_names must map plan codes to names, e.g. {{ free = "Free" }}')
    refresh = _seconds(source, table, "member_refresh_s", 300.0)
    return GuardPolicy(cast(OnError, on_error), refresh, _seconds(source, table, "member_wait_s", 1.0), dict(names))


def _seconds(source: str, table: Mapping[str, Any], name: str, default: float) -> float:
    found = table.get(name, default)
    if isinstance(found, bool) or not isinstance(found, int | float) or found < 0:
        raise ConfigError(f"{source}: [guard] {name} must be a number of seconds >= 0, not {found!r}")
    return float(found)
