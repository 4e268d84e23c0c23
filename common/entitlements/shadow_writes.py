"""Shadow mode's record: per (org, user) target, what the service would write to Kinde there, and why.

With `ROLESYNC_MODE=shadow` every pass runs as in live mode (reads, the union, snapshots, timelines),
but where it would add or remove a role it only records it here (worker/convergence/targets.py). Each pass over a
target replaces the target's record, and a pass that finds Kinde already as the service would make it
drops it: the records are every target where Kinde today differs from the service's answer, as of the
last pass over it (`rolesync reconcile` passes over every customer). `rolesync shadow report` lists
them; `rolesync adopt` turns the removals someone chooses to keep into hand grants.

Redis: `keys.SHADOW_TARGETS`, a hash target key -> JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis

from common import keys
from common.entitlements.grants import Target
from common.infra.connections import redis_errors

NO_PLAN = "no plan grants it"


@dataclass(frozen=True)
class ShadowWrite:
    org_code: str
    user_id: str
    add: tuple[str, ...]  # managed roles the service would add
    remove: tuple[str, ...]  # managed roles Kinde holds there that no covering party gives
    why: dict[str, list[str]] = field(default_factory=dict)  # role -> who gives it (adds) or NO_PLAN (removals)
    at: float = 0.0

    @property
    def target(self) -> Target:
        return Target(self.org_code, self.user_id)

    def to_dict(self) -> dict[str, Any]:
        return {"org_code": self.org_code, "user_id": self.user_id, "add": list(self.add),
                "remove": list(self.remove), "why": self.why, "at": self.at}  # fmt: skip

    @classmethod
    def from_json(cls, raw: str) -> ShadowWrite:
        data: dict[str, Any] = json.loads(raw)
        why = {str(k): [str(r) for r in v] for k, v in (data.get("why") or {}).items()}
        return cls(str(data["org_code"]), str(data["user_id"]), tuple(data.get("add") or ()),
                   tuple(data.get("remove") or ()), why, float(data.get("at") or 0.0))  # fmt: skip


class ShadowLog(Protocol):
    def record(self, target: Target, write: ShadowWrite | None) -> None:
        """What a pass would write at the target now; None: nothing (Kinde is as the service would make it)."""

    def all(self) -> list[ShadowWrite]: ...


class MemoryShadowLog:
    """The same record in this process: `rolesync adopt --from reconcile` runs the passes here, not in shadow mode."""

    def __init__(self) -> None:
        self._found: dict[Target, ShadowWrite] = {}

    def record(self, target: Target, write: ShadowWrite | None) -> None:
        if write is None:
            self._found.pop(target, None)
        else:
            self._found[target] = write

    def all(self) -> list[ShadowWrite]:
        return [self._found[t] for t in sorted(self._found)]


class RedisShadowLog:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def record(self, target: Target, write: ShadowWrite | None) -> None:
        with redis_errors("recording a shadow write"):
            if write is None:
                self._redis.hdel(keys.SHADOW_TARGETS, target.key)
            else:
                self._redis.hset(keys.SHADOW_TARGETS, target.key, json.dumps(write.to_dict(), sort_keys=True))

    def all(self) -> list[ShadowWrite]:
        with redis_errors("reading the shadow writes"):
            found = self._redis.hgetall(keys.SHADOW_TARGETS)
        return sorted((ShadowWrite.from_json(str(v)) for v in found.values()), key=lambda w: w.target)
