"""The snapshot of one (org, user) target: what is in force there now, from every customer covering it.

Written under the target's lease by whoever converges it (worker/convergence/targets.py), right after its roles
were made the union of its covering customers' grants, so it always describes the roles Kinde holds
from that write. Per covering customer (a *source*): its active plans (code, subscribed_on), the
features it grants there, its managed roles, its payment standing, and when its agreements and
entitlements were read and at which generation.

The target's features are the union over its sources; a feature two customers grant keeps the
larger limit (unlimited beats any number), and lists every customer granting it. A customer whose
plan roles are suspended for a failing payment (plans.toml `[payment_failed] action = "suspend"`)
grants no features either: it is listed with `suspended: true` and its plans, so the reason shows.

Hand grants (common/entitlements/manual_grants.py) covering the target are listed beside the sources, each with
`granted_by: {"grant": id, "reason": …}`, and `granted_by` maps each managed role to every party
giving it (`{"customer": id}` or a hand grant's `{"grant": id, "reason": …}`).

Redis: `keys.user_snapshots(user)`, a hash org code -> JSON, so one read finds all of a user's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

import redis

from common import keys
from common.entitlements.customer import Feature, PlanHeld
from common.entitlements.grants import Target
from common.infra.connections import redis_errors


@dataclass(frozen=True)
class Source:
    """One covering customer as the target's snapshot saw it."""

    customer_id: str
    plans: tuple[PlanHeld, ...]
    features: tuple[Feature, ...]  # what it grants here (none while suspended)
    roles: tuple[str, ...]
    standing: str  # "ok", "failing", or "unknown" (no payment event seen)
    suspended: bool
    generation: int
    read_at: float
    entitlements_read_at: float | None  # None: not read (disabled, or not yet for these agreements)

    def to_dict(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "plans": [p.to_dict() for p in self.plans],
            "features": [f.to_dict() for f in self.features],
            "roles": list(self.roles),
            "payment_standing": self.standing,
            "suspended": self.suspended,
            "generation": self.generation,
            "read_at": float(self.read_at),  # a float always, so a stored snapshot is its own public shape
            "entitlements_read_at": self.entitlements_read_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Source:
        return cls(
            customer_id=str(data["customer_id"]),
            plans=tuple(PlanHeld(str(p["code"]), p.get("subscribed_on")) for p in data.get("plans") or []),
            features=tuple(Feature.from_dict(f) for f in data.get("features") or []),
            roles=tuple(str(r) for r in data.get("roles") or []),
            standing=str(data.get("payment_standing") or "unknown"),
            suspended=bool(data.get("suspended")),
            generation=int(data.get("generation", -1)),
            read_at=float(data.get("read_at") or 0.0),
            entitlements_read_at=data.get("entitlements_read_at"),
        )


@dataclass(frozen=True)
class ByHand:
    """One hand grant covering the target as the snapshot saw it."""

    grant_id: str
    reason: str
    by: str
    roles: tuple[str, ...]  # the managed roles it gives here
    until: float | None

    def granted_by(self) -> dict[str, str]:
        return {"grant": self.grant_id, "reason": self.reason}

    def to_dict(self) -> dict[str, Any]:
        return {"granted_by": self.granted_by(), "roles": list(self.roles), "by": self.by, "until": self.until}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ByHand:
        given = data.get("granted_by") or {}
        return cls(str(given.get("grant") or ""), str(given.get("reason") or ""), str(data.get("by") or ""),
                   tuple(str(r) for r in data.get("roles") or []), data.get("until"))  # fmt: skip


@dataclass(frozen=True)
class TargetSnapshot:
    target: Target
    roles: tuple[str, ...]  # the managed roles written at the target
    sources: tuple[Source, ...]
    computed_at: float
    by_hand: tuple[ByHand, ...] = ()  # the hand grants covering it

    def holds_nothing(self) -> bool:
        """No roles, no plans and no features, whoever covers it: the app is told `removed` (worker/outputs/
        notify.py) and the entitlements table has no row for it (common/table/table_rows.py)."""
        return not self.roles and not self.plans() and not self.features()

    def granted_by(self) -> dict[str, list[dict[str, str]]]:
        """Each role held, with every party giving it: covering customers first, then hand grants."""
        found: dict[str, list[dict[str, str]]] = {r: [] for r in self.roles}
        for source in self.sources:
            for role in source.roles:
                found.setdefault(role, []).append({"customer": source.customer_id})
        for grant in self.by_hand:
            for role in grant.roles:
                found.setdefault(role, []).append(grant.granted_by())
        return found

    def features(self) -> list[dict[str, Any]]:
        """The union over the sources: one row per feature code, larger limit wins, with who grants it."""
        best: dict[str, Feature] = {}
        granted_by: dict[str, list[str]] = {}
        for source in self.sources:
            for feature in source.features:
                best[feature.code] = best[feature.code].larger(feature) if feature.code in best else feature
                granted_by.setdefault(feature.code, []).append(source.customer_id)
        return [{**best[c].to_dict(), "granted_by": sorted(granted_by[c])} for c in sorted(best)]

    def plans(self) -> list[dict[str, Any]]:
        rows = ({**p.to_dict(), "customer_id": s.customer_id} for s in self.sources for p in s.plans)
        return sorted(rows, key=lambda r: (r["code"], r["customer_id"]))

    def to_dict(self) -> dict[str, Any]:
        """The public shape (the read API serves it as is)."""
        return {
            "org_code": self.target.org_code,
            "user_id": self.target.user_id,
            "plans": self.plans(),
            "features": self.features(),
            "roles": list(self.roles),
            "customers": [s.to_dict() for s in self.sources],
            "hand_grants": [g.to_dict() for g in self.by_hand],
            "granted_by": self.granted_by(),
            "computed_at": float(self.computed_at),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, raw: str) -> TargetSnapshot:
        data: dict[str, Any] = json.loads(raw)
        return cls(
            target=Target(str(data["org_code"]), str(data["user_id"])),
            roles=tuple(str(r) for r in data.get("roles") or []),
            sources=tuple(Source.from_dict(s) for s in data.get("customers") or []),
            computed_at=float(data.get("computed_at") or 0.0),
            by_hand=tuple(ByHand.from_dict(g) for g in data.get("hand_grants") or []),
        )


_PUBLIC_KEYS = frozenset(("org_code", "user_id", "plans", "features", "roles", "customers", "hand_grants",
                           "granted_by", "computed_at"))  # fmt: skip
_SOURCE_KEYS = frozenset(("customer_id", "plans", "features", "roles", "payment_standing", "suspended", "generation",
                          "read_at", "entitlements_read_at"))  # fmt: skip
_BY_HAND_KEYS = frozenset(("granted_by", "roles", "by", "until"))


def public_dict(raw: str) -> dict[str, Any]:
    """A stored snapshot in its public shape (`to_dict`'s), for the read API.

    A snapshot this version wrote is stored in that shape already (`to_json` is `to_dict` with sorted keys), so
    it is served as parsed: rebuilding it as a TargetSnapshot and back cost the API half its view time
    (docs/benchmarks.md, "Read API"). One stored by an older version (no hand grants, no `granted_by`, a whole
    number for a time) is rebuilt, so every answer stays what `to_dict` makes of it.
    """
    data: dict[str, Any] = json.loads(raw)
    return data if _is_public(data) else TargetSnapshot.from_json(raw).to_dict()


def _is_public(data: dict[str, Any]) -> bool:
    return (
        data.keys() == _PUBLIC_KEYS
        and isinstance(data["computed_at"], float)
        and all(s.keys() == _SOURCE_KEYS and isinstance(s["read_at"], float) for s in data["customers"])
        and all(g.keys() == _BY_HAND_KEYS for g in data["hand_grants"])
    )


class SnapshotStore(Protocol):
    def put(self, snapshot: TargetSnapshot) -> None: ...

    def remove(self, target: Target) -> None:
        """The membership is gone (the user left the org, or either was deleted)."""

    def of_user(self, user_id: str) -> list[TargetSnapshot]: ...

    def forget_user(self, user_id: str) -> None:
        """The user was deleted: none of its memberships holds anything any more."""


class RedisSnapshotStore:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def put(self, snapshot: TargetSnapshot) -> None:
        target = snapshot.target
        with redis_errors("writing a target snapshot"):
            self._redis.hset(keys.user_snapshots(target.user_id), target.org_code, snapshot.to_json())

    def remove(self, target: Target) -> None:
        with redis_errors("removing a target snapshot"):
            self._redis.hdel(keys.user_snapshots(target.user_id), target.org_code)

    def forget_user(self, user_id: str) -> None:
        with redis_errors("removing a deleted user's snapshots"):
            self._redis.delete(keys.user_snapshots(user_id))

    def of_user(self, user_id: str) -> list[TargetSnapshot]:
        with redis_errors("reading a user's snapshots"):
            found = self._redis.hgetall(keys.user_snapshots(user_id))
        return [TargetSnapshot.from_json(str(found[org])) for org in sorted(found)]
