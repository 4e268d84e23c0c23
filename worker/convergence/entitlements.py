"""A customer's entitlements as the pass's own read said, kept for the snapshot.

With entitlements on, every pass reads the customer's entitlements (`expand=plans`) as its one read of
what is in force (worker/convergence/in_force.py), so keeping them costs no call of its own: a plan change costs
the read, the roles and the writes, and a duplicate none (it runs no pass). The features are stored
with the plans the answer listed (or, when Kinde sent no `plans`, the active agreements' codes).

A failed read never holds up roles: the pass went on from the agreements, the stored record stays
as it was, and the snapshot shows when entitlements were last read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import structlog

from common.entitlements.customer import Entitlements, EntitlementStore, PlanHeld, features_of, plans_digest, plans_of
from worker.convergence.in_force import InForce

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class EntitlementKeeper:
    store: EntitlementStore

    def keep(self, customer_id: str, held: InForce, generation: int) -> bool:
        """Store the entitlements the pass read; False when its read failed (the stored record stays)."""
        answer = held.entitlements
        if answer is None:
            return False
        plans = plans_of(answer.plans) if answer.plans_listed else _plans(held.agreements or [])
        features = features_of(answer.rows)
        self.store.put(Entitlements(customer_id, plans_digest(plans), plans, features, generation, time.time()))
        log.info("entitlements_read", features=len(features), plans=[p.code for p in plans])
        return True


def _plans(active: list[dict[str, Any]]) -> tuple[PlanHeld, ...]:
    """The active agreements' plan codes (no `subscribed_on`: only `expand=plans` gives it)."""
    codes = sorted({str(a.get("plan_code") or (a.get("plan") or {}).get("code") or "") for a in active} - {""})
    return tuple(PlanHeld(code) for code in codes)
