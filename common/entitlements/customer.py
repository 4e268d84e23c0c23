"""What a billing customer is entitled to, as Kinde's entitlements endpoint last said: features and limits.

Kept beside the grant record (common/entitlements/grants.py), one record per customer, written by the customer's
own pass from its one read of what is in force (worker/convergence/in_force.py); the digest of the plans it was
read under (`plans_digest`) is stored with the record.

Kinde's shape (GET /api/v1/billing/entitlements, scope read:billing_entitlements, paged with
`starting_after`/`has_more`): each row has `feature_code`, `feature_name`, `entitlement_limit_max`,
`entitlement_limit_min`, `price_name`, `unit_amount`, `fixed_charge`; `expand=plans` adds
`plans: [{code, subscribed_on}]`. Kinde-authored code treats `entitlement_limit_max = 2147483647` as
unlimited (not in Kinde's spec), so that value is reported as `unlimited`; a missing max is unlimited too.

Redis: `keys.customer_entitlements(customer)` holds the JSON record.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import redis

from common import keys
from common.entitlements.grants import PUT_IF_NOT_OLDER
from common.entitlements.newest_records import RedisNewestRecords

UNLIMITED = 2_147_483_647


@dataclass(frozen=True, order=True)
class Feature:
    code: str
    name: str = ""
    limit_max: int | None = None  # None = unlimited
    limit_min: int | None = None

    @property
    def unlimited(self) -> bool:
        return self.limit_max is None

    def to_dict(self) -> dict[str, Any]:
        return {"feature_code": self.code, "feature_name": self.name, "limit_max": self.limit_max,
                "limit_min": self.limit_min, "unlimited": self.unlimited}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Feature:
        return cls(str(data["feature_code"]), str(data.get("feature_name") or ""),
                   _int_or_none(data.get("limit_max")), _int_or_none(data.get("limit_min")))  # fmt: skip

    @classmethod
    def from_kinde(cls, row: dict[str, Any]) -> Feature:
        top = _int_or_none(row.get("entitlement_limit_max"))
        return cls(str(row["feature_code"]), str(row.get("feature_name") or ""),
                   None if top is None or top >= UNLIMITED else top,
                   _int_or_none(row.get("entitlement_limit_min")))  # fmt: skip

    def larger(self, other: Feature) -> Feature:
        """The same feature held twice: the larger limit wins (unlimited beats any number)."""
        if self.unlimited or other.unlimited:
            return self if self.unlimited else other
        return self if (self.limit_max or 0) >= (other.limit_max or 0) else other


@dataclass(frozen=True)
class PlanHeld:
    code: str
    subscribed_on: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "subscribed_on": self.subscribed_on}


@dataclass(frozen=True)
class Entitlements:
    customer_id: str
    digest: str  # of the plans they were read under
    plans: tuple[PlanHeld, ...]
    features: tuple[Feature, ...]
    generation: int
    read_at: float

    def to_json(self) -> str:
        return json.dumps(
            {
                "customer_id": self.customer_id,
                "digest": self.digest,
                "plans": [p.to_dict() for p in self.plans],
                "features": [f.to_dict() for f in self.features],
                "generation": self.generation,
                "read_at": self.read_at,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, raw: str) -> Entitlements:
        data: dict[str, Any] = json.loads(raw)
        return cls(
            customer_id=str(data["customer_id"]),
            digest=str(data.get("digest") or ""),
            plans=tuple(PlanHeld(str(p["code"]), p.get("subscribed_on")) for p in data.get("plans") or []),
            features=tuple(Feature.from_dict(f) for f in data.get("features") or []),
            generation=int(data.get("generation", -1)),
            read_at=float(data.get("read_at", 0.0)),
        )


def plans_digest(plans: Iterable[PlanHeld]) -> str:
    """What identifies a set of plans held: their codes and since when, in a stable order."""
    rows = sorted((p.code, p.subscribed_on or "") for p in plans)
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:32]


def features_of(rows: Iterable[dict[str, Any]]) -> tuple[Feature, ...]:
    """One feature per code (two active plans may both grant it: the larger limit wins)."""
    found: dict[str, Feature] = {}
    for row in rows:
        if row.get("feature_code"):
            feature = Feature.from_kinde(row)
            found[feature.code] = found[feature.code].larger(feature) if feature.code in found else feature
    return tuple(sorted(found.values()))


def plans_of(rows: Iterable[dict[str, Any]]) -> tuple[PlanHeld, ...]:
    held = {str(p["code"]): p.get("subscribed_on") for p in rows if isinstance(p, dict) and p.get("code")}
    return tuple(PlanHeld(code, str(on) if on else None) for code, on in sorted(held.items()))


def _int_or_none(raw: Any) -> int | None:
    if isinstance(raw, bool) or raw is None:
        return None
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None


class EntitlementStore(Protocol):
    def get(self, customer_id: str) -> Entitlements | None: ...

    def get_many(self, customer_ids: Iterable[str]) -> dict[str, Entitlements]: ...

    def put(self, record: Entitlements) -> bool:
        """Store the record unless a newer generation (or the same one read later) is stored; True if written."""


class RedisEntitlementStore(RedisNewestRecords[Entitlements]):
    def __init__(self, client: redis.Redis) -> None:
        super().__init__(client, keys.customer_entitlements, Entitlements.from_json, "customer entitlements",
                         PUT_IF_NOT_OLDER)  # fmt: skip
