"""`rolesync adopt`: keep, as hand grants, the managed roles users hold today that no plan grants.

Read from shadow mode's record (common/entitlements/shadow_writes.py: the removals each target's last shadow pass
would make, "no plan grants it"), or (`--from reconcile`, before the workers first start)
from a reconcile dry run made now (`dry_run_writes`): the same passes, in this process, record the
same removals in memory, writing no role to Kinde and learning no link. The default only lists them; `--grant`
turns each target's removals into one hand grant (common/entitlements/manual_grants.py) with the reason given
(and `--until`), so that going live removes only what someone chose to let go. Both count per role
and write a CSV for review."""

from __future__ import annotations

import csv
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from common.entitlements.hand_grant_changes import HandGrantChanges
from common.entitlements.manual_grants import HandGrant, new_grant_id
from common.entitlements.shadow_writes import MemoryShadowLog, ShadowWrite

if TYPE_CHECKING:
    from ops.reconcile import Preview
    from worker.events.handlers import Deps

CSV_FIELDS = ("org_code", "user_id", "role", "why", "action", "grant_id")


@dataclass(frozen=True)
class Adoption:
    """One target's managed roles held today that no covering party gives (what going live would remove)."""

    org_code: str
    user_id: str
    roles: tuple[str, ...]
    grant_id: str = ""  # set once granted


def dry_run_writes(deps: Deps) -> tuple[list[ShadowWrite], list[Preview]]:
    """What shadow mode would record over every customer (found by paging Kinde too), from a dry run made now;
    with the dry run's previews, whose `error` names a customer it could not check."""
    from ops.reconcile import dry_run

    found = MemoryShadowLog()
    previews = dry_run(deps, None, discover=True, shadow=found)
    return found.all(), previews


def adoptions(writes: Iterable[ShadowWrite], roles: frozenset[str] | None = None) -> list[Adoption]:
    """Each target with removals (only of `roles`, when given)."""
    found = ((w, tuple(r for r in w.remove if roles is None or r in roles)) for w in writes)
    return [Adoption(w.org_code, w.user_id, kept) for w, kept in found if kept]


def per_role(found: Iterable[Adoption]) -> dict[str, int]:
    return dict(sorted(Counter(r for a in found for r in a.roles).items()))


def grant_all(changes: HandGrantChanges, found: list[Adoption], *, reason: str, by: str,
              until: float | None) -> list[Adoption]:  # fmt: skip
    """One hand grant per target, of exactly the roles it would lose; the adoptions with their grant ids."""
    granted = []
    for adoption in found:
        grant = HandGrant(new_grant_id(), adoption.user_id, adoption.org_code, adoption.roles, reason, by,
                          time.time(), until)  # fmt: skip
        changes.add(grant)
        granted.append(Adoption(adoption.org_code, adoption.user_id, adoption.roles, grant.grant_id))
    return granted


def write_csv(path: Path, found: list[Adoption], *, granted: bool) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        rows = csv.writer(out)
        rows.writerow(CSV_FIELDS)
        for a in found:
            for role in a.roles:
                rows.writerow([a.org_code, a.user_id, role, "no plan grants it", "granted" if granted else "listed",
                               a.grant_id])  # fmt: skip
