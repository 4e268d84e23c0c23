"""Which plans.toml mapping the fleet runs, and which one a reconcile sweep last applied everywhere.

A target's roles follow the plans.toml of whoever converges it, so a changed mapping reaches a
customer only at its next pass. Each worker process records the fingerprint of the mapping it runs
(`keys.WORKER_MAPPINGS`, written with its heartbeat); a finished mapping sweep records the mapping
it applied (`keys.MAPPING_APPLIED`, with the mapping itself, so the next change can be previewed
against it). A running mapping that differs from the applied one is *pending*
(`keys.MAPPING_PENDING`, held when `ROLESYNC_MAPPING_CHANGE=hold`) until a sweep applies it; the
sweep's progress is `keys.MAPPING_SWEEP`. worker/sweeps/mapping_change.py drives this; `rolesync status`
reads it.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

import redis

from common import keys
from common.infra.connections import redis_errors
from common.infra.lua_scripts import lua_script
from common.plans.mapping import PlanMap, plans_from_json

UNREADABLE = "unreadable"  # a worker whose plans file could not be read runs no mapping
# KEYS: the sweep lock. ARGV: holder. Deletes the lock only if this holder still has it.
_RELEASE = lua_script("common.infra", "compare_and_delete.lua")


@dataclass(frozen=True)
class Mapping:
    fingerprint: str
    plans: str  # PlanMap.to_json()
    at: float
    held: bool = False  # pending only: waits for `rolesync reconcile --apply-mapping`

    @classmethod
    def of(cls, plans: PlanMap, *, held: bool = False) -> Mapping:
        return cls(plans.fingerprint, plans.to_json(), time.time(), held)

    def plan_map(self) -> PlanMap:
        return plans_from_json(self.plans)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, raw: str) -> Mapping:
        data = json.loads(raw)
        return cls(str(data["fingerprint"]), str(data["plans"]), float(data["at"]), bool(data.get("held")))


@dataclass
class SweepProgress:
    fingerprint: str
    total: int
    done: int
    started_at: float

    @property
    def percent(self) -> int:
        return 100 * self.done // self.total if self.total else 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


class MappingStore:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._release = client.register_script(_RELEASE)

    def applied(self) -> Mapping | None:
        return self._get(keys.MAPPING_APPLIED, "reading the applied mapping")

    def pending(self) -> Mapping | None:
        return self._get(keys.MAPPING_PENDING, "reading the pending mapping")

    def adopt(self, mapping: Mapping) -> bool:
        """Record `mapping` as applied if none is recorded yet (the first start of this version)."""
        with redis_errors("recording the first applied mapping"):
            return bool(self._redis.set(keys.MAPPING_APPLIED, mapping.to_json(), nx=True))

    def record_pending(self, mapping: Mapping) -> None:
        with redis_errors("recording the pending mapping"):
            self._redis.set(keys.MAPPING_PENDING, mapping.to_json())

    def record_applied(self, mapping: Mapping) -> None:
        """A sweep has applied `mapping`: it is no longer pending and its sweep is over."""
        with redis_errors("recording the applied mapping"), self._redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.MAPPING_APPLIED, mapping.to_json())
            pipe.delete(keys.MAPPING_PENDING, keys.MAPPING_SWEEP)
            pipe.execute()

    def progress(self) -> SweepProgress | None:
        with redis_errors("reading the mapping sweep"):
            raw = self._redis.get(keys.MAPPING_SWEEP)
        return SweepProgress(**json.loads(str(raw))) if raw else None

    def record_progress(self, progress: SweepProgress) -> None:
        with redis_errors("recording the mapping sweep"):
            self._redis.set(keys.MAPPING_SWEEP, progress.to_json())

    def take_sweep(self, holder: str, ttl_s: float) -> bool:
        with redis_errors("taking the mapping sweep"):
            return bool(self._redis.set(keys.MAPPING_SWEEP_LOCK, holder, nx=True, px=max(1, int(ttl_s * 1000))))

    def release_sweep(self, holder: str) -> None:
        with redis_errors("releasing the mapping sweep"):
            self._release(keys=[keys.MAPPING_SWEEP_LOCK], args=[holder])

    def running(self, fresh_s: float, now: float | None = None) -> dict[str, str]:
        """Worker id → fingerprint for every worker process alive (`""`: it records none, an older version)."""
        now = time.time() if now is None else now
        with redis_errors("reading the mappings workers run"):
            alive = [str(w) for w in self._redis.zrangebyscore(keys.WORKER_HEARTBEATS, now - fresh_s, "+inf")]
            recorded = {str(k): str(v) for k, v in self._redis.hgetall(keys.WORKER_MAPPINGS).items()}
            gone = [w for w in recorded if w not in alive]
            if gone:  # a worker that beats again records its mapping again in the same step
                self._redis.hdel(keys.WORKER_MAPPINGS, *gone)
        return {w: recorded.get(w, "") for w in alive}

    def _get(self, key: str, doing: str) -> Mapping | None:
        with redis_errors(doing):
            raw = self._redis.get(key)
        return Mapping.from_json(str(raw)) if raw else None
