"""Where the customer-index rebuild keeps its place: one run at a time, resumable, coalesced.

The run in progress is one JSON cursor (`keys.REBUILD_CURSOR`, see worker/customers/rebuild.py). The chunk
chain running it holds `keys.REBUILD_LEASE` (its holder id), renewed by every saved step, so one
chain runs at a time and a chain that died is replaced once its lease expires. Every transition
is one Lua script, so a request and the end of a run cannot miss each other:

* `request(received_at)`: a run that started after the event was received covers it (nothing to
  do); otherwise, if a run is going, mark another as wanted (`keys.REBUILD_REQUESTED`, one flag for
  any number of requests), else start one now. When no chain holds the lease, the caller's holder
  takes it and must send the first chunk.
* `finish`: record the run's start as the last finished one, then start the wanted run at once
  (keeping the lease) or release the lease.
"""

from __future__ import annotations

from typing import Protocol

import redis

from common import keys
from common.infra.connections import redis_errors

LEASE_MS = 180_000  # well above one chunk (worker/customers/rebuild.py CHUNK_S) plus one Kinde call

_REQUEST = """
local started = tonumber(redis.call('GET', KEYS[3]) or '-1')
local running = redis.call('EXISTS', KEYS[1]) == 1
if started <= tonumber(ARGV[1]) then
  if running then
    redis.call('SET', KEYS[4], '1')
  else
    redis.call('SET', KEYS[1], ARGV[3])
    redis.call('SET', KEYS[3], ARGV[2])
    redis.call('DEL', KEYS[4])
    running = true
  end
end
if running and redis.call('SET', KEYS[2], ARGV[4], 'NX', 'PX', ARGV[5]) then
  return 1
end
return 0
"""

_HOLD = """
local cursor = redis.call('GET', KEYS[1])
local held = redis.call('GET', KEYS[2])
if held and held ~= ARGV[1] then
  return false
end
if not cursor then
  if held then redis.call('DEL', KEYS[2]) end
  return false
end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return cursor
"""

_SAVE = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
"""

_FINISH = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return -1
end
redis.call('SET', KEYS[5], ARGV[2])
if redis.call('GET', KEYS[4]) then
  redis.call('DEL', KEYS[4])
  redis.call('SET', KEYS[1], ARGV[4])
  redis.call('SET', KEYS[3], ARGV[3])
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
  return 1
end
redis.call('DEL', KEYS[1], KEYS[2])
return 0
"""

_KEYS = [keys.REBUILD_CURSOR, keys.REBUILD_LEASE, keys.REBUILD_STARTED, keys.REBUILD_REQUESTED, keys.REBUILD_FINISHED]


class RebuildStore(Protocol):
    def request(self, received_at: float, now: float, fresh: str, holder: str) -> bool:
        """Ask for a run covering an event received at `received_at`; True: `holder` must send the first chunk."""

    def hold(self, holder: str) -> str | None:
        """Take or renew the lease as `holder`; the cursor to continue from, or None (another holds it, or no run)."""

    def save(self, holder: str, cursor: str) -> bool:
        """Store the cursor after a step (and renew the lease); False if `holder` lost the lease."""

    def finish(self, holder: str, started_at: float, now: float, fresh: str) -> bool:
        """The run that started at `started_at` ended; True if a wanted run started with `fresh`, still held."""

    def last_finished(self) -> float | None:
        """When the last finished run had started."""


class RedisRebuildStore:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._request = client.register_script(_REQUEST)
        self._hold = client.register_script(_HOLD)
        self._save = client.register_script(_SAVE)
        self._finish = client.register_script(_FINISH)

    def request(self, received_at: float, now: float, fresh: str, holder: str) -> bool:
        with redis_errors("requesting an index rebuild"):
            return bool(self._request(keys=_KEYS, args=[f"{received_at:.6f}", f"{now:.6f}", fresh, holder, LEASE_MS]))

    def hold(self, holder: str) -> str | None:
        with redis_errors("taking the rebuild lease"):
            found = self._hold(keys=_KEYS, args=[holder, LEASE_MS])
        return str(found) if found else None

    def save(self, holder: str, cursor: str) -> bool:
        with redis_errors("saving the rebuild cursor"):
            return bool(self._save(keys=_KEYS, args=[holder, LEASE_MS, cursor]))

    def finish(self, holder: str, started_at: float, now: float, fresh: str) -> bool:
        with redis_errors("finishing an index rebuild"):
            return int(self._finish(keys=_KEYS, args=[holder, f"{started_at:.6f}", f"{now:.6f}", fresh, LEASE_MS])) == 1

    def last_finished(self) -> float | None:
        with redis_errors("reading the last rebuild"):
            found = self._redis.get(keys.REBUILD_FINISHED)
        return float(str(found)) if found else None
