"""Refresh one org's entry in the guard's member cache (common/members.py) from Kinde's member listing.

Asked for by the API (api/plan_selection.py) on a miss or a stale count, at most once per interval per
org. Best effort: a failure is logged and dropped (no retry, no dead letter), since the next decision
that needs the count asks again, and the guard's `on_error` covers the meantime.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from common.errors import PermanentError, ServiceError
from common.members import MemberCache
from worker.kinde import KindeApi
from worker.targets import GONE

log = structlog.get_logger(__name__)


def refresh_members(kinde: KindeApi, cache: MemberCache, org_code: str, clock: Callable[[], float] = time.time) -> str:
    read_at = clock()  # the count is as old as the listing's first page
    try:
        ids = [str(row["id"]) for row in kinde.org_members(org_code) if row.get("id")]
    except PermanentError as exc:
        if exc.reason in GONE:
            cache.org_gone(org_code)
            return "org_gone"
        return _failed(org_code, exc)
    except ServiceError as exc:
        return _failed(org_code, exc)
    count = cache.replace(org_code, ids, read_at)
    log.info("org_members_refreshed", org_code=org_code, members=count)
    return "members_refreshed"


def _failed(org_code: str, exc: ServiceError) -> str:
    log.warning("org_members_refresh_failed", org_code=org_code, reason=exc.reason, error=str(exc))
    return "members_unavailable"
