"""Noticing that Redis lost its data: every process keeps the epoch key and remembers what it saw there.

`keys.DATA_EPOCH` is a hash {id, tick}, made with a fresh random id by the first process to find none; every
check of every process raises its tick. A process remembers the id and tick of its last check, so:

- the key gone (a FLUSHALL, a new empty instance, a lost volume): the check makes a new id, not the one seen;
- a restore from an older backup: the same id, but a tick at or below the one this process saw last; the first
  process to see that renews the id, so every other process sees a new id and notices the loss too.

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
from common.connections import redis_errors

Verdict = Literal["first", "same", "lost"]

# KEYS[1] epoch; ARGV[1] a fresh id, used only when there is no epoch
_CHECK = """
if redis.call('EXISTS', KEYS[1]) == 0 or not redis.call('HGET', KEYS[1], 'id') then
  redis.call('HSET', KEYS[1], 'id', ARGV[1], 'tick', 1)
  return {ARGV[1], 1}
end
return {redis.call('HGET', KEYS[1], 'id'), redis.call('HINCRBY', KEYS[1], 'tick', 1)}
"""
# KEYS[1] epoch; ARGV[1] the id whose tick went back, ARGV[2] its successor: only the first to see it renews
_RENEW = """
if redis.call('HGET', KEYS[1], 'id') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'id', ARGV[2], 'tick', 1)
  return {ARGV[2], 1}
end
return {redis.call('HGET', KEYS[1], 'id'), redis.call('HINCRBY', KEYS[1], 'tick', 1)}
"""


@dataclass(frozen=True)
class Seen:
    id: str
    tick: int

    @classmethod
    def of(cls, answer: Any) -> Seen:
        epoch_id, tick = answer
        return cls(str(epoch_id), int(tick))


def judge(before: Seen | None, now: Seen) -> Verdict:
    if before is None:
        return "first"
    return "same" if now.id == before.id and now.tick > before.tick else "lost"


def went_back(before: Seen | None, now: Seen) -> bool:
    """The same epoch with an older tick: a backup restored under us (the id must be renewed)."""
    return before is not None and now.id == before.id and now.tick <= before.tick


class EpochWatch:
    """One process's view of the epoch (a worker's helper process, the CLI): `check` says whether data was lost."""

    def __init__(self, client: redis.Redis) -> None:
        self._check, self._renew = client.register_script(_CHECK), client.register_script(_RENEW)
        self.seen: Seen | None = None

    def check(self) -> Verdict:
        with redis_errors("checking the data epoch"):
            now = Seen.of(self._check(keys=[keys.DATA_EPOCH], args=[uuid.uuid4().hex]))
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
            now = Seen.of(await self._check(keys=[keys.DATA_EPOCH], args=[uuid.uuid4().hex]))
            if went_back(self.seen, now):
                now = Seen.of(await self._renew(keys=[keys.DATA_EPOCH], args=[now.id, uuid.uuid4().hex]))
        verdict, self.seen = judge(self.seen, now), now
        return verdict
