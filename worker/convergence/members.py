"""Refresh one org's entry in the guard's member cache (common/guard/members.py) from Kinde's member listing.

Asked for by the API (api/plan_selection.py) on a miss or a stale count, at most once per interval per
org. Best effort: a failure (Kinde or Redis) is logged and dropped, never raised, so there is no retry
and no dead letter; the next decision that needs the count asks again, and `on_error` covers the
meantime. A request queued before the cache was last filled (a backlog while workers were down) is
skipped, so a burst of requests costs one listing.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from common.errors import PermanentError, ServiceError
from common.guard.members import MemberCache
from worker.kinde.answers import GONE
from worker.kinde.api import KindeApi

log = structlog.get_logger(__name__)


def refresh_members(kinde: KindeApi, cache: MemberCache, org_code: str, *, asked_at: float = 0.0,
                    clock: Callable[[], float] = time.time) -> str:  # fmt: skip
    try:
        return _refresh(kinde, cache, org_code, asked_at, clock)
    except ServiceError as exc:
        log.warning("org_members_refresh_failed", org_code=org_code, reason=exc.reason, error=str(exc))
        return "members_unavailable"


def _refresh(kinde: KindeApi, cache: MemberCache, org_code: str, asked_at: float, clock: Callable[[], float]) -> str:
    known = cache.count(org_code)
    if known is not None and known.read_at >= asked_at > 0:
        return "already_fresh"
    read_at = clock()  # the count is as old as the listing's first page
    try:
        ids = [str(row["id"]) for row in kinde.org_members(org_code) if row.get("id")]
    except PermanentError as exc:
        if exc.reason not in GONE:
            raise
        cache.org_gone(org_code)
        return "org_gone"
    count = cache.replace(org_code, ids, read_at)
    log.info("org_members_refreshed", org_code=org_code, members=count)
    return "members_refreshed"
