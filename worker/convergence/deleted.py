"""Users and orgs Kinde deleted: marked when `user.deleted` / `organization.deleted` is handled, before
the deletion looks for the targets it clears.

A pass that read Kinde before the deletion may be about to store a snapshot at one of them: the user's
*first* one, which nothing lists yet, or an org target whose member listing showed nothing to write
(no Kinde call there, so no "gone" answer either). The pass checks the marks under the target's lease,
right before it stores a snapshot (worker/convergence/snapshot.py), and stores none. Either it checked first, and
then its grant record (written before it took the lease) already named the target, which the
deletion waits on and clears; or the mark was there when it checked. A `*.created` event of the
same id clears its mark (Kinde does not reuse ids; this only keeps a test tenant honest).

Redis: `keys.deleted_user(user)`, `keys.deleted_org(org)`, kept `TTL_S` (far beyond any pass that
could still be running).
"""

from __future__ import annotations

from typing import Protocol

import redis

from common import keys
from common.entitlements.grants import Target
from common.infra.connections import redis_errors

TTL_S = 30 * 24 * 3600


class Deletions(Protocol):
    def mark_user(self, user_id: str) -> None: ...

    def mark_org(self, org_code: str) -> None: ...

    def created(self, *, user_id: str | None = None, org_code: str | None = None) -> None:
        """A user or org of that id exists (again): clear its mark."""

    def deleted(self, target: Target) -> bool:
        """Whether the target's user or org was deleted."""


class RedisDeletions:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def mark_user(self, user_id: str) -> None:
        with redis_errors("marking a user deleted"):
            self._redis.set(keys.deleted_user(user_id), "1", ex=TTL_S)

    def mark_org(self, org_code: str) -> None:
        with redis_errors("marking an org deleted"):
            self._redis.set(keys.deleted_org(org_code), "1", ex=TTL_S)

    def created(self, *, user_id: str | None = None, org_code: str | None = None) -> None:
        found = [
            *([keys.deleted_user(user_id)] if user_id else []),
            *([keys.deleted_org(org_code)] if org_code else []),
        ]
        if found:
            with redis_errors("clearing a deletion mark"):
                self._redis.delete(*found)

    def deleted(self, target: Target) -> bool:
        with redis_errors("reading whether a user or org was deleted"):
            return bool(self._redis.exists(keys.deleted_user(target.user_id), keys.deleted_org(target.org_code)))
