"""The guard's cache of each org's members, so `org_members` is counted without asking Kinde per decision.

Filled by a member listing (the worker's `refresh_org_members` actor, asked for by the API at most once
per `[guard] member_refresh_s` per org, or at once on a miss) and kept up between listings by the user
events: a `user.created`/`user.updated` look-up lists the user's orgs (docs/kinde-facts.md, Event
payloads), `user.deleted` takes the user out of all, `organization.deleted` drops the org. Kinde sends
no event when a member is removed from an org; the next listing (or the user's next event) catches it.

Redis (common/keys.py): `org-members:{org}` the user ids, `org-members-read:{org}` when the listing was
read (a count is trusted only for an org that has one), `user-orgs:{user}` the orgs the cache has the
user in, `org-members-seen:{org}` the joins and leaves user events showed since the last listing: a
listing read before one (the refresh actor's, landing after the event was handled) must not undo it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import redis

from common import keys
from common.infra.connections import redis_errors

CHUNK = 500
SEEN_TTL_S = 24 * 3600  # a listing lands within minutes of an event; a day bounds a quiet org's hash


@dataclass(frozen=True)
class MemberCount:
    count: int
    read_at: float  # when the listing under it was read


class MemberCache(Protocol):
    def replace(self, org_code: str, user_ids: Iterable[str], read_at: float) -> int:
        """Store a full member listing; how many members."""

    def user_orgs(self, user_id: str, org_codes: Iterable[str]) -> None:
        """A user's orgs per a look-up: add it to those, take it out of the others."""

    def user_gone(self, user_id: str) -> None: ...

    def org_gone(self, org_code: str) -> None: ...

    def count(self, org_code: str) -> MemberCount | None:
        """None while no listing filled the org's cache."""


class RedisMemberCache:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def replace(self, org_code: str, user_ids: Iterable[str], read_at: float) -> int:
        with redis_errors("reading an org's cached members"):
            before = {str(u) for u in self._redis.smembers(keys.org_members(org_code))}
            seen = {str(u): str(v) for u, v in self._redis.hgetall(keys.org_members_seen(org_code)).items()}
        now, settled = _listed(set(user_ids), seen, read_at)
        with redis_errors("caching an org's members"), self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.org_members(org_code))
            for start in range(0, len(now), CHUNK):
                pipe.sadd(keys.org_members(org_code), *now[start : start + CHUNK])
            for user in now:
                pipe.sadd(keys.user_orgs(user), org_code)
            for user in before.difference(now):
                pipe.srem(keys.user_orgs(user), org_code)
            if settled:
                pipe.hdel(keys.org_members_seen(org_code), *settled)
            pipe.set(keys.org_members_read(org_code), f"{read_at:.6f}")
            pipe.execute()
        return len(now)

    def user_orgs(self, user_id: str, org_codes: Iterable[str]) -> None:
        now, seen_at = set(org_codes), time.time()
        with redis_errors("reading a user's cached orgs"):
            before = {str(o) for o in self._redis.smembers(keys.user_orgs(user_id))}
        with redis_errors("caching a user's orgs"), self._redis.pipeline(transaction=True) as pipe:
            for org in now - before:
                pipe.sadd(keys.org_members(org), user_id)
                _note(pipe, org, user_id, f"+{seen_at:.6f}")
            for org in before - now:
                pipe.srem(keys.org_members(org), user_id)
                _note(pipe, org, user_id, f"-{seen_at:.6f}")
            pipe.delete(keys.user_orgs(user_id))
            if now:
                pipe.sadd(keys.user_orgs(user_id), *sorted(now))
            pipe.execute()

    def user_gone(self, user_id: str) -> None:
        self.user_orgs(user_id, ())

    def org_gone(self, org_code: str) -> None:
        with redis_errors("dropping an org's cached members"):
            self._redis.delete(keys.org_members(org_code), keys.org_members_read(org_code))

    def count(self, org_code: str) -> MemberCount | None:
        with redis_errors("counting an org's cached members"), self._redis.pipeline(transaction=False) as pipe:
            pipe.get(keys.org_members_read(org_code))
            pipe.scard(keys.org_members(org_code))
            read_at, count = pipe.execute()
        return MemberCount(int(count), float(read_at)) if read_at else None


def _note(pipe: Any, org_code: str, user_id: str, change: str) -> None:
    pipe.hset(keys.org_members_seen(org_code), user_id, change)
    pipe.expire(keys.org_members_seen(org_code), SEEN_TTL_S)


def _listed(listed: set[str], seen: dict[str, str], read_at: float) -> tuple[list[str], list[str]]:
    """The members a listing read at `read_at` gives, with each join or leave seen after it kept; and the
    seen changes the listing already holds (read after them), which can be dropped."""
    later = {user: change for user, change in seen.items() if float(change[1:]) > read_at}
    now = (listed | {u for u, c in later.items() if c[0] == "+"}) - {u for u, c in later.items() if c[0] == "-"}
    return sorted(now), sorted(set(seen) - set(later))
