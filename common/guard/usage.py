"""Metered usage per customer and feature, from `customer.meter_usage_updated` webhooks.

Kinde has not published that event's `data`, and no endpoint reads usage back, so every variant the
ecosystem reads is accepted and the raw `data` is kept beside what was understood (capped):

* feature: `data.feature_code`, `data.billing_feature_code`, `data.feature.code|key`,
  `data.meter.feature_code`, else `meter:{data.meter_id}`, else `unknown`;
* value: `data.meter_value` (Kinde's POST /billing/meter_usage sends it as a string), `data.value`,
  `data.quantity`, `data.usage`, `data.consumed`, `data.meter.value`; a number or a numeric string;
* kind: `data.meter_type_code` (`absolute` or `delta`; a delta is kept as given, never summed, since
  we never see the total it applies to);
* time: `data.meter_usage_timestamp`, else the event's `timestamp`.

Per feature only the latest reading is kept (by its own time; a late, older one is ignored).
Redis: `keys.customer_usage(customer)`, a hash feature code -> JSON reading.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import redis

from common import keys
from common.infra.connections import redis_errors
from common.infra.lua_scripts import lua_script
from common.webhooks.events import epoch_of

USAGE_EVENT = "customer.meter_usage_updated"
RAW_CAP = 2_000  # characters of raw `data` kept per reading
_FEATURE_FIELDS = ("feature_code", "billing_feature_code")
_VALUE_FIELDS = ("meter_value", "value", "quantity", "usage", "consumed")

# KEYS: usage hash. ARGV: feature, reading JSON, its time. Keeps the newer reading of a feature (1 kept, 0 older).
KEEP_NEWER = lua_script("common.guard", "keep_newer.lua")


@dataclass(frozen=True)
class Reading:
    feature_code: str
    value: float | None
    kind: str | None  # "absolute", "delta" or None (not said)
    at: float
    event_id: str
    raw: str  # the event's `data`, JSON, capped

    def to_json(self) -> str:
        return json.dumps({"feature_code": self.feature_code, "value": self.value, "kind": self.kind, "at": self.at,
                           "event_id": self.event_id, "raw": self.raw}, sort_keys=True)  # fmt: skip


def reading_of(claims: Mapping[str, Any], event_id: str, received_at: float) -> Reading:
    data = claims.get("data") if isinstance(claims.get("data"), dict) else {}
    assert isinstance(data, dict)
    at = epoch_of(data.get("meter_usage_timestamp")) or epoch_of(claims.get("timestamp")) or received_at
    kind = data.get("meter_type_code")
    raw = json.dumps(data, sort_keys=True, default=str)[:RAW_CAP]
    return Reading(_feature(data), _value(data), str(kind) if kind else None, at, event_id, raw)


def _feature(data: Mapping[str, Any]) -> str:
    for name in _FEATURE_FIELDS:
        if data.get(name):
            return str(data[name])
    for outer, inner in (("feature", "code"), ("feature", "key"), ("meter", "feature_code")):
        nested = data.get(outer)
        if isinstance(nested, dict) and nested.get(inner):
            return str(nested[inner])
    return f"meter:{data['meter_id']}" if data.get("meter_id") else "unknown"


def _value(data: Mapping[str, Any]) -> float | None:
    meter = data.get("meter") if isinstance(data.get("meter"), dict) else {}
    for raw in (*(data.get(n) for n in _VALUE_FIELDS), meter.get("value") if isinstance(meter, dict) else None):
        if isinstance(raw, bool) or raw is None:
            continue
        try:
            return float(raw)
        except (TypeError, ValueError):
            continue
    return None


def usage_rows(raw: Mapping[Any, Any]) -> dict[str, dict[str, Any]]:
    """A usage hash as stored, feature code -> reading."""
    return {str(k): json.loads(v) for k, v in sorted(raw.items())}


class UsageStore(Protocol):
    def record(self, customer_id: str, reading: Reading) -> bool:
        """Keep the reading unless a newer one of the feature is kept; True if kept."""

    def of(self, customer_id: str) -> dict[str, dict[str, Any]]: ...


class RedisUsageStore:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._keep = client.register_script(KEEP_NEWER)

    def record(self, customer_id: str, reading: Reading) -> bool:
        with redis_errors("recording metered usage"):
            args = [reading.feature_code, reading.to_json(), f"{reading.at:.6f}"]
            return bool(self._keep(keys=[keys.customer_usage(customer_id)], args=args))

    def of(self, customer_id: str) -> dict[str, dict[str, Any]]:
        with redis_errors("reading metered usage"):
            return usage_rows(self._redis.hgetall(keys.customer_usage(customer_id)))
