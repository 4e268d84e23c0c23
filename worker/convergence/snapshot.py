"""Record what is in force at a target, from the grant records its roles were just computed from.

Called by worker/convergence/targets.py under the target's lease, after the roles were written, so a snapshot
never shows roles Kinde does not hold. Each covering customer becomes a `Source` (common/entitlements/snapshots.py):
its plans (with `subscribed_on` when its entitlements were read for these very plans), the features
it grants (none while its payment suspends it), its roles, standing and read times.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from common.entitlements.customer import Entitlements, EntitlementStore, PlanHeld
from common.entitlements.grants import Grants, Target
from common.entitlements.manual_grants import HandGrant
from common.entitlements.snapshots import ByHand, SnapshotStore, Source, TargetSnapshot

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SnapshotKeeper:
    snapshots: SnapshotStore
    entitlements: EntitlementStore
    standing: Callable[[str], dict[str, Any] | None]
    suspended: Callable[[str, Sequence[str]], bool]  # a customer with these plans (PlanMap.suspended)
    deleted: Callable[[Target], bool] = lambda _: False  # its user or org was deleted (worker/convergence/deleted.py)

    def record(self, target: Target, records: list[tuple[Grants, frozenset[str]]], roles: frozenset[str],
               by_hand: Sequence[tuple[HandGrant, frozenset[str]]] = ()) -> None:  # fmt: skip
        """`records`: each covering customer's record with the managed roles it grants at the target;
        `by_hand`: each hand grant covering it with the managed roles it gives there.

        Under the target's lease: a user or org deleted meanwhile gets none (its deletion has the last word)."""
        if self.deleted(target):
            self.gone(target)
            return
        found = self.entitlements.get_many(g.customer_id for g, _ in records)
        # by customer id: whichever customer's pass writes it, the same state reads the same (no spurious webhook)
        ordered = sorted(records, key=lambda r: r[0].customer_id)
        sources = tuple(self._source(g, granted, found.get(g.customer_id)) for g, granted in ordered)
        hands = tuple(ByHand(g.grant_id, g.reason, g.by, tuple(sorted(given)), g.until)
                      for g, given in sorted(by_hand, key=lambda h: h[0].grant_id))  # fmt: skip
        self.snapshots.put(TargetSnapshot(target, tuple(sorted(roles)), sources, time.time(), hands))

    def gone(self, target: Target) -> None:
        self.snapshots.remove(target)

    def _source(self, record: Grants, roles: frozenset[str], held: Entitlements | None) -> Source:
        current = held is not None and {p.code for p in held.plans} == set(record.plans)
        suspended = self.suspended(record.customer_id, record.plans)
        plans = held.plans if held is not None and current else tuple(PlanHeld(c) for c in record.plans)
        features = held.features if held is not None and current and not suspended else ()
        standing = self.standing(record.customer_id)
        return Source(
            customer_id=record.customer_id,
            plans=plans,
            features=features,
            roles=tuple(sorted(roles)),
            standing=str(standing["standing"]) if standing else "unknown",
            suspended=suspended,
            generation=record.generation,
            read_at=record.read_at,
            entitlements_read_at=held.read_at if held is not None and current else None,
        )
