"""What the Postgres entitlements table still has to learn: one pending change per target, in Redis.

Every snapshot change (worker/outputs/table_feed.py) is noted here in one script: it takes the next number
of a fleet-wide counter (`keys.TABLE_GENERATION`) as the change's *generation*, stores the target's
new row (or null: delete it) as its newest change (`keys.TABLE_CHANGES`, replacing an unwritten
older one), and marks the target pending since its oldest unwritten change (`keys.TABLE_PENDING`).
A change is cleared only by whoever wrote that very generation to Postgres, so a change noted while
an older one was being written stays pending. Postgres being down therefore loses nothing: the
changes wait here (the roles were written long before), and `rolesync status` reads the lag.

Why a fleet-wide counter: a target's covering customers each have their own generations, which
cannot be compared with one another, while snapshot changes to one target are made one at a time
under its lease, so numbers taken from one counter at each change order a target's changes exactly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis

from common import keys
from common.infra.connections import redis_errors
from common.table.table_rows import TableRow

# KEYS: counter, pending zset, changes hash. ARGV: target key, row JSON or "null", now.
_NOTE = """
local g = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[3], ARGV[1], '{"generation":' .. g .. ',"row":' .. ARGV[2] .. '}')
redis.call('ZADD', KEYS[2], 'NX', ARGV[3], ARGV[1])
return g
"""
# KEYS: pending zset, changes hash. ARGV: target key. Unmarks it only if no change waits for it.
_FORGET = """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
return redis.call('ZREM', KEYS[1], ARGV[1])
"""
# KEYS: counter. ARGV: the least value it must have.
_AT_LEAST = """
if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return tonumber(redis.call('GET', KEYS[1]) or '0')
"""
# KEYS: pending zset, changes hash. ARGV: target key, generation written. Clears it if still the newest.
_CLEAR = """
local raw = redis.call('HGET', KEYS[2], ARGV[1])
if raw and tonumber(cjson.decode(raw)['generation']) ~= tonumber(ARGV[2]) then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
"""


@dataclass(frozen=True)
class Change:
    target_key: str  # "org|user"
    generation: int
    row: TableRow | None  # None: the target holds nothing, delete its row


@dataclass(frozen=True)
class Lag:
    pending: int  # targets whose newest change the table lacks
    oldest_s: float | None  # how long the oldest of them has waited

    def to_dict(self) -> dict[str, Any]:
        return {"pending": self.pending, "oldest_s": self.oldest_s}


class TableOutbox:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._note = client.register_script(_NOTE)
        self._clear = client.register_script(_CLEAR)
        self._at_least = client.register_script(_AT_LEAST)
        self._forget = client.register_script(_FORGET)

    def note(self, target_key: str, row: TableRow | None, now: float) -> int:
        """Record the target's newest row (None: delete it); its generation."""
        args = [target_key, row.to_json() if row else "null", f"{now:.3f}"]
        with redis_errors("noting a change for the entitlements table"):
            return int(self._note(keys=[keys.TABLE_GENERATION, keys.TABLE_PENDING, keys.TABLE_CHANGES], args=args))

    def newest(self, target_key: str) -> Change | None:
        with redis_errors("reading a change for the entitlements table"):
            raw = self._redis.hget(keys.TABLE_CHANGES, target_key)
        if raw is None:
            return None
        data = json.loads(str(raw))
        row = TableRow(**data["row"]) if data["row"] else None
        return Change(target_key, int(data["generation"]), row)

    def written(self, change: Change) -> bool:
        """The change is in the table: forget it unless a newer one was noted meanwhile."""
        with redis_errors("clearing a change written to the entitlements table"):
            args: list[str | int] = [change.target_key, change.generation]
            return bool(self._clear(keys=[keys.TABLE_PENDING, keys.TABLE_CHANGES], args=args))

    def forget(self, target_key: str) -> None:
        """Unmark a target found pending with no change (cleared meanwhile), unless one was noted since."""
        with redis_errors("clearing a pending target"):
            self._forget(keys=[keys.TABLE_PENDING, keys.TABLE_CHANGES], args=[target_key])

    def pending(self, limit: int) -> list[str]:
        """Target keys with unwritten changes, oldest first."""
        with redis_errors("listing pending changes for the entitlements table"):
            return [str(k) for k in self._redis.zrange(keys.TABLE_PENDING, 0, limit - 1)]

    def generation_at_least(self, floor: int) -> int:
        """Raise the counter to `floor` (the table's highest generation): after Redis lost its data, new
        changes must still number above the rows they replace. The counter's value."""
        with redis_errors("raising the entitlements table generation"):
            return int(self._at_least(keys=[keys.TABLE_GENERATION], args=[floor]))

    def lag(self, now: float) -> Lag:
        with redis_errors("reading the entitlements table lag"), self._redis.pipeline(transaction=False) as pipe:
            pipe.zcard(keys.TABLE_PENDING)
            pipe.zrange(keys.TABLE_PENDING, 0, 0, withscores=True)
            count, oldest = pipe.execute()
        return Lag(int(count), round(now - float(oldest[0][1]), 1) if oldest else None)
