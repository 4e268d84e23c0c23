"""Noticing that Redis lost its data: every process keeps the epoch key and remembers what it saw there.

`keys.DATA_EPOCH` is a hash {id, at}, made with a fresh random id by the first process to find none; every
check of every process (each `CHECK_S`) sets `at` to the server's clock and reads what it held before. A process
remembers the id it saw and the `at` it wrote, so:

- the key gone (a FLUSHALL, a new empty instance, a lost volume): the check makes a new id, not the one seen;
- a restore from an older backup: the same id, but an `at` older than the one this process wrote itself by more
  than `WENT_BACK_S`; the first process to see that renews the id, so every other process notices the loss too.
  The slack lets a Sentinel failover or an `appendfsync everysec` restart lose a second of writes unnoticed
  (the writes that matter are WAITed for or fsynced: docs/reliability.md).

A new epoch also writes this release's layout version if the key is gone with the data (common/infra/layout.py).

A process's first check only remembers: a new install and a loss before any process was running look alike
(a fleet always has a process running that saw the old epoch: it notices).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

import redis
import redis.asyncio

from common import keys
from common.infra.connections import redis_errors
from common.infra.layout import LAYOUT

Verdict = Literal["first", "same", "lost"]

WENT_BACK_S = 30
_CHECKED = [keys.DATA_EPOCH, keys.LAYOUT_VERSION]
# KEYS[1] epoch, KEYS[2] the layout version; ARGV[1] a fresh id, used only when there is none, ARGV[2] this release's
# layout, written with a new epoch when none is there (the data now in Redis is the running fleet's: layout.py).
# Returns {id, `at` before this check, `at` now}.
_CHECK = """
local now = redis.call('TIME')[1]
local id = redis.call('HGET', KEYS[1], 'id')
if not id then
  redis.call('HSET', KEYS[1], 'id', ARGV[1], 'at', now)
  redis.call('SET', KEYS[2], ARGV[2], 'NX')
  return {ARGV[1], now, now}
end
local before = redis.call('HGET', KEYS[1], 'at') or '0'
redis.call('HSET', KEYS[1], 'at', now)
return {id, before, now}
"""
# KEYS[1] epoch; ARGV[1] the id whose `at` went back, ARGV[2] its successor: only the first to see it renews.
_RENEW = """
local now = redis.call('TIME')[1]
if redis.call('HGET', KEYS[1], 'id') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'id', ARGV[2], 'at', now)
  return {ARGV[2], now, now}
end
return {redis.call('HGET', KEYS[1], 'id'), now, now}
"""


@dataclass(frozen=True)
class Seen:
    id: str
    before: int  # the epoch's `at` this check found (server clock, s)
    at: int  # the `at` this check wrote

    @classmethod
    def of(cls, answer: Any) -> Seen:
        epoch_id, before, at = answer
        return cls(_text(epoch_id), int(before), int(at))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def judge(last: Seen | None, now: Seen) -> Verdict:
    if last is None:
        return "first"
    return "lost" if now.id != last.id or went_back(last, now) else "same"


def went_back(last: Seen | None, now: Seen) -> bool:
    """The same epoch, found older than this process left it: a backup restored under us (renew the id)."""
    return last is not None and now.id == last.id and now.before < last.at - WENT_BACK_S


class EpochWatch:
    """One process's view of the epoch (a worker's helper process, the CLI): `check` says whether data was lost."""

    def __init__(self, client: redis.Redis) -> None:
        self._check, self._renew = client.register_script(_CHECK), client.register_script(_RENEW)
        self.seen: Seen | None = None

    def check(self) -> Verdict:
        with redis_errors("checking the data epoch"):
            now = Seen.of(self._check(keys=_CHECKED, args=[uuid.uuid4().hex, LAYOUT]))
            if went_back(self.seen, now):
                now = Seen.of(self._renew(keys=[keys.DATA_EPOCH], args=[now.id, uuid.uuid4().hex]))
        verdict, self.seen = judge(self.seen, now), now
        return verdict


class AsyncEpochWatch:
    """The same watch on an asyncio client (the ingest)."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._check, self._renew = client.register_script(_CHECK), client.register_script(_RENEW)
        self.seen: Seen | None = None

    async def check(self) -> Verdict:
        with redis_errors("checking the data epoch"):
            now = Seen.of(await self._check(keys=_CHECKED, args=[uuid.uuid4().hex, LAYOUT]))
            if went_back(self.seen, now):
                now = Seen.of(await self._renew(keys=[keys.DATA_EPOCH], args=[now.id, uuid.uuid4().hex]))
        verdict, self.seen = judge(self.seen, now), now
        return verdict
