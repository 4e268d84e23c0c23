"""One row of the Postgres entitlements table: a target's snapshot (common/entitlements/snapshots.py) as columns.

The row says what the read API says about the (org, user) target: its covering customers, their
plans, the features in force (union, larger limit wins), the managed roles written, each
customer's payment standing, and the metered usage of those customers (common/guard/usage.py), which
the API likewise reads beside the snapshot, and the hand grants covering it
(common/entitlements/manual_grants.py). A target that holds nothing (no roles, no plans, no
features) has no row: its row is deleted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from common.entitlements.snapshots import TargetSnapshot

# what a usage row keeps of a reading: `raw` (the event's data, up to 2,000 characters) stays in Redis
USAGE_FIELDS = ("value", "kind", "at")


@dataclass(frozen=True)
class TableRow:
    org_code: str
    user_id: str
    customer_ids: list[str]
    plans: list[dict[str, Any]]  # {code, subscribed_on, customer_id}
    features: list[dict[str, Any]]  # as the snapshot's: limits, unlimited, granted_by
    roles: list[str]
    standing: dict[str, dict[str, Any]]  # customer id -> {payment_standing, suspended}
    usage: dict[str, dict[str, dict[str, Any]]]  # customer id -> feature code -> {value, kind, at}
    updated_at: float  # when the snapshot was computed (epoch s)
    hand_grants: list[dict[str, Any]] = field(default_factory=list)  # {granted_by: {grant, reason}, roles, by, until}

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def row_of(snapshot: TargetSnapshot, usage_of: Callable[[str], dict[str, dict[str, Any]]]) -> TableRow | None:
    """The target's row, or None when it holds nothing. `usage_of`: a customer's readings by feature."""
    if snapshot.holds_nothing():
        return None
    customers = [s.customer_id for s in snapshot.sources]
    return TableRow(
        org_code=snapshot.target.org_code,
        user_id=snapshot.target.user_id,
        customer_ids=sorted(customers),
        plans=snapshot.plans(),
        features=snapshot.features(),
        roles=list(snapshot.roles),
        standing={s.customer_id: {"payment_standing": s.standing, "suspended": s.suspended} for s in snapshot.sources},
        usage={c: _kept(found) for c in customers if (found := usage_of(c))},
        updated_at=snapshot.computed_at,
        hand_grants=[g.to_dict() for g in snapshot.by_hand],
    )


def _kept(readings: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {feature: {k: r.get(k) for k in USAGE_FIELDS} for feature, r in readings.items()}
