"""Users Kinde deleted: marked when `user.deleted` is handled, before its targets are looked for.

A pass that read the user before the deletion may be about to store the user's *first* snapshot at a
target: nothing lists that target yet, so the deletion cannot wait for it. The pass checks the mark
under the target's lease, right before it stores a snapshot (worker/snapshot.py), and stores none.
Either the pass checked first, and then its grant record (written before it took the lease) already
named the target, which the deletion waits on and clears; or the mark was there when it checked.

Redis: `keys.deleted_user(user)`, kept `TTL_S` (far beyond any pass that could still be running).
"""

from __future__ import annotations

from typing import Protocol

import redis

from common import keys
from common.connections import redis_errors

TTL_S = 30 * 24 * 3600


class DeletedUsers(Protocol):
    def mark(self, user_id: str) -> None: ...

    def deleted(self, user_id: str) -> bool: ...


class RedisDeletedUsers:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def mark(self, user_id: str) -> None:
        with redis_errors("marking a user deleted"):
            self._redis.set(keys.deleted_user(user_id), "1", ex=TTL_S)

    def deleted(self, user_id: str) -> bool:
        with redis_errors("reading whether a user was deleted"):
            return bool(self._redis.exists(keys.deleted_user(user_id)))
