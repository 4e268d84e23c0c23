"""What each billing customer grants, and where: the records a target's managed roles are computed from.

A *target* is one (org, user) membership. The managed roles a target should hold are the union of
what every customer covering it grants (docs/architecture.md, "The convergence model"). A customer's
own pass writes its record: the active plan codes read from Kinde, the managed roles they grant
(after the failed-payment policy), the targets it covered and the generation the pass started from.
A record is replaced only by one of a newer generation, or of the same generation read no earlier,
so a pass that outlived its lease never overwrites a newer pass's answer (nor its own message's
retry's, which has its generation). A record *borrowed* by another customer's pass (the
customer had no record yet) has generation `BORROWED`: any own pass replaces it.

A target an event converged for a customer (a member who joined a paying org, converged from the
user event alone) is added to the customer's record (`cover`), so the customer's next pass leaves it
if Kinde no longer lists it: a pass decides what to leave from the record, and the record must name
every target the customer's roles were written at, not only those its last member listing showed.
A pass's write puts, in the same step, every target the stored record lists and its new record does not on
the leaving set, so a `cover` landing after the pass read its previous record is left, not overwritten.

Targets a customer's roles must leave (its link moved, a member left its org) are kept apart, in a
set, from before the record forgets them until a pass has converged each one without the customer:
a pass that fails half-way leaves them there for its retry.

Redis: `keys.customer_grants(customer)` holds the JSON record, `keys.customer_leaving(customer)`
the targets still to leave.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import redis

from common import keys
from common.entitlements.newest_records import RedisNewestRecords
from common.infra.connections import redis_errors

BORROWED = -1
ALL_MEMBERS = "*"  # a leaving target's user: every member of the org (an org link that moved, no record yet)

# KEYS: record key. ARGV: record JSON, its generation, its read time. Returns 1 if written, 0 if a newer
# one is kept: a newer generation, or the same generation read later (the retry of a pass that outlived
# its lease has the stale pass's generation, and must not be overwritten by it).
_NEWER_KEPT = """
local old = redis.call('GET', KEYS[1])
local stored = old and cjson.decode(old)
if stored then
  local generation, mine = tonumber(stored['generation']), tonumber(ARGV[2])
  if generation > mine or (generation == mine and tonumber(stored['read_at'] or 0) > tonumber(ARGV[3])) then
    return 0
  end
end
"""
_SET = """
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""
PUT_IF_NOT_OLDER = _NEWER_KEPT + _SET
# KEYS: record key, leaving set. ARGV: as PUT_IF_NOT_OLDER. Written, the targets the stored record lists and
# this one does not go to the leaving set in the same step: a target `cover` added after the pass read its
# previous record is left (or covered again) by that pass, not overwritten (tests/worker/convergence/test_join_race.py).
PUT_GRANTS = (
    _NEWER_KEPT
    + """
if stored then
  local kept = {}
  for _, t in ipairs(cjson.decode(ARGV[1])['targets'] or {}) do kept[t[1] .. '|' .. t[2]] = true end
  for _, t in ipairs(stored['targets'] or {}) do
    if not kept[t[1] .. '|' .. t[2]] then redis.call('SADD', KEYS[2], t[1] .. '|' .. t[2]) end
  end
end
"""
    + _SET
)


@dataclass(frozen=True, order=True)
class Target:
    org_code: str
    user_id: str

    @property
    def key(self) -> str:
        return f"{self.org_code}|{self.user_id}"

    @classmethod
    def from_key(cls, key: str) -> Target:
        org, _, user = key.partition("|")
        return cls(org, user)


@dataclass(frozen=True)
class Grants:
    customer_id: str
    plans: tuple[str, ...]
    roles: frozenset[str]
    targets: tuple[Target, ...]
    generation: int
    read_at: float

    def to_json(self) -> str:
        return json.dumps(
            {
                "customer_id": self.customer_id,
                "plans": list(self.plans),
                "roles": sorted(self.roles),
                "targets": [[t.org_code, t.user_id] for t in self.targets],
                "generation": self.generation,
                "read_at": self.read_at,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, raw: str) -> Grants:
        data: dict[str, Any] = json.loads(raw)
        return cls(
            customer_id=str(data["customer_id"]),
            plans=tuple(str(p) for p in data.get("plans") or []),
            roles=frozenset(str(r) for r in data.get("roles") or []),
            targets=tuple(Target(str(o), str(u)) for o, u in data.get("targets") or []),
            generation=int(data.get("generation", BORROWED)),
            read_at=float(data.get("read_at", 0.0)),
        )


class GrantStore(Protocol):
    def get(self, customer_id: str) -> Grants | None: ...

    def get_many(self, customer_ids: Iterable[str]) -> dict[str, Grants]:
        """The records that exist, by customer id."""

    def put(self, grants: Grants) -> bool:
        """Store the record unless a newer generation is stored; True if written. Written, every target the
        stored record lists and this one does not is added to the leaving set in the same step."""

    def cover(self, customer_id: str, target: Target) -> bool:
        """Add a target an event converged for the customer to its record; False if it has no record."""

    def leaving(self, customer_id: str) -> list[Target]:
        """Targets the customer's roles must still leave (org "" = the B2C org)."""

    def add_leaving(self, customer_id: str, targets: Iterable[Target]) -> None: ...

    def left(self, customer_id: str, target: Target) -> None:
        """The target was converged without the customer."""


class RedisGrantStore(RedisNewestRecords[Grants]):
    def __init__(self, client: redis.Redis) -> None:
        super().__init__(client, keys.customer_grants, Grants.from_json, "customer grants", PUT_GRANTS)

    def _put_keys(self, customer_id: str) -> list[str]:  # PUT_GRANTS also adds to the leaving set
        return [keys.customer_grants(customer_id), keys.customer_leaving(customer_id)]

    def cover(self, customer_id: str, target: Target) -> bool:
        key, found = keys.customer_grants(customer_id), [False]

        def add(pipe: redis.client.Pipeline) -> None:  # WATCHed: a pass's put in between runs this again
            raw = pipe.get(key)
            record = Grants.from_json(str(raw)) if raw else None
            found[0] = record is not None
            if record is not None and target not in record.targets:
                pipe.multi()
                pipe.set(key, replace(record, targets=(*record.targets, target)).to_json())

        with redis_errors("adding a target to a customer's grants"):
            self._redis.transaction(add, key)
        return found[0]

    def leaving(self, customer_id: str) -> list[Target]:
        with redis_errors("reading the targets a customer leaves"):
            found = self._redis.smembers(keys.customer_leaving(customer_id))
        return sorted(Target.from_key(str(k)) for k in found)

    def add_leaving(self, customer_id: str, targets: Iterable[Target]) -> None:
        found = [t.key for t in targets]
        if found:
            with redis_errors("recording the targets a customer leaves"):
                self._redis.sadd(keys.customer_leaving(customer_id), *found)

    def left(self, customer_id: str, target: Target) -> None:
        with redis_errors("recording a target left"):
            self._redis.srem(keys.customer_leaving(customer_id), target.key)
