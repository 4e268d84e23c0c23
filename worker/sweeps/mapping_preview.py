"""Who gains and who loses which roles when the plans.toml mapping changes, from Redis alone.

The grant records (common/entitlements/grants.py) hold each customer's plan codes and the targets it covered at
its last pass, so the change is the union at each target under the old mapping against the union
under the new one, with no Kinde call: cheap enough to print at every worker start-up, before the
sweep writes anything. It is as fresh as the records (a member who joined since the org customer's
last pass is not in it); the sweep itself reads Kinde. A role the new mapping no longer names is
not lost: the service stops managing it and leaves it where it is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from common.customers.links import LinkStore
from common.entitlements.grants import Grants, GrantStore, Target
from common.plans.mapping import PlanMap

CHUNK = 500


@dataclass(frozen=True)
class Change:
    target: Target
    gained: frozenset[str]
    lost: frozenset[str]

    def describe(self) -> str:
        signed = [f"+{r}" for r in sorted(self.gained)] + [f"-{r}" for r in sorted(self.lost)]
        return f"{self.target.user_id} in {self.target.org_code}: {' '.join(signed)}"


@dataclass
class Preview:
    customers: int = 0
    targets: int = 0
    changes: list[Change] = field(default_factory=list)
    unmanaged: frozenset[str] = frozenset()  # roles the old mapping managed and the new one leaves alone

    def by_role(self) -> dict[str, dict[str, int]]:
        gained = Counter(r for c in self.changes for r in c.gained)
        lost = Counter(r for c in self.changes for r in c.lost)
        return {r: {"gain": gained[r], "lose": lost[r]} for r in sorted({*gained, *lost})}


def records(links: LinkStore, grants: GrantStore) -> Iterator[Grants]:
    customer_ids = links.all_customer_ids()
    for start in range(0, len(customer_ids), CHUNK):
        yield from grants.get_many(customer_ids[start : start + CHUNK]).values()


def preview(found: Iterable[Grants], old: PlanMap, new: PlanMap, failing: Callable[[str], bool],
            by_hand: Callable[[Target], frozenset[str]] = lambda _: frozenset()) -> Preview:  # fmt: skip
    """The change at every recorded target when `old` gives way to `new`; `by_hand`: the roles hand grants
    (common/entitlements/manual_grants.py) give at a target, which cover it under either mapping."""
    result = Preview(unmanaged=old.managed_roles - new.managed_roles)
    covering: dict[Target, list[Grants]] = {}
    for record in found:
        result.customers += 1
        for target in record.targets:
            covering.setdefault(target, []).append(record)
    result.targets = len(covering)
    for target, covers in sorted(covering.items()):
        hand = by_hand(target)
        before = frozenset().union(*(old.granted(g.plans, failing=failing(g.customer_id)) for g in covers),
                                   hand & old.managed_roles)  # fmt: skip
        after = frozenset().union(*(new.granted(g.plans, failing=failing(g.customer_id)) for g in covers),
                                  hand & new.managed_roles)  # fmt: skip
        change = Change(target, after - before, (before - after) & new.managed_roles)
        if change.gained or change.lost:
            result.changes.append(change)
    return result
