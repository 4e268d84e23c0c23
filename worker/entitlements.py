"""A customer's entitlements, re-read from Kinde only when its active agreements changed (or on reconcile).

The pass has just read the customer's agreements; their digest (common/entitlements.py) is compared
with the one stored with the last entitlements read. Same digest: the stored record still holds and
no call is made, so a plan change costs one call more and a duplicate or a payment event none. A
customer with no active agreement is entitled to nothing, which needs no call either.

A failed read never holds up roles: the pass goes on with the stored record (its old digest makes the
next pass try again) and says so in the log; the snapshot shows when entitlements were last read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import structlog

from common.entitlements import Entitlements, EntitlementStore, PlanHeld, agreements_digest, features_of, plans_of
from common.errors import ServiceError
from worker.kinde import KindeApi

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class EntitlementKeeper:
    kinde: KindeApi
    store: EntitlementStore

    def refresh(self, customer_id: str, active: list[dict[str, Any]], generation: int, *, force: bool) -> bool:
        """Bring the stored record in line with `active` agreements; True if Kinde was asked."""
        digest = agreements_digest(active)
        stored = self.store.get(customer_id)
        if stored is not None and stored.digest == digest and not force:
            return False
        if not active:
            self.store.put(Entitlements(customer_id, digest, (), (), generation, time.time()))
            return False
        try:
            answer = self.kinde.entitlements(customer_id)
        except ServiceError as exc:
            log.warning("entitlements_read_failed", reason=exc.reason, error=str(exc), kept_stale=stored is not None)
            return True
        plans = _plans(active, plans_of(answer.plans))
        self.store.put(Entitlements(customer_id, digest, plans, features_of(answer.rows), generation, time.time()))
        log.info("entitlements_read", features=len(answer.rows), plans=[p.code for p in plans])
        return True


def _plans(active: list[dict[str, Any]], listed: tuple[PlanHeld, ...]) -> tuple[PlanHeld, ...]:
    """The active agreements' plan codes, with `subscribed_on` where Kinde's `expand=plans` gave it."""
    since = {p.code: p.subscribed_on for p in listed}
    codes = sorted({str(a.get("plan_code") or (a.get("plan") or {}).get("code") or "") for a in active} - {""})
    return tuple(PlanHeld(code, since.get(code)) for code in codes)
