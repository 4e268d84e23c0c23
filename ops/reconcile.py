"""`rolesync reconcile`: the real sweep on the worker fleet, or a dry run that writes nothing.

The real sweep is worker/sweeps/reconcile.py's `sweep` (discover, one `converge_customer` message per
customer for the fleet, watch, record). The dry run runs the worker's `Converger` in this process
over `DryRunKinde`, optionally with another plans file, and reports per customer the roles that
would be added and removed and the Kinde calls it would cost; it learns no link, enqueues nothing
and sends Kinde no write.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from common.customers.links import CustomerLink
from common.entitlements.shadow_writes import ShadowLog
from common.errors import PermanentError, ServiceError
from common.plans.mapping import PlanMap
from common.settings import Settings
from ops.dryrun import DryRunGrants, DryRunKinde, DryRunLocks
from worker.convergence.converge import Converger
from worker.entrypoints.bootstrap import build_deps
from worker.events.handlers import Deps
from worker.runtime.retry_policy import patiently
from worker.sweeps.reconcile import NOT_LINKED


@dataclass(frozen=True)
class Preview:
    customer_id: str
    added: list[tuple[str, str]]  # (user_id, role key)
    removed: list[tuple[str, str]]
    calls: int
    new: bool = False  # found by paging Kinde, not linked yet
    error: str = ""

    @property
    def drift(self) -> bool:
        return bool(self.added or self.removed)


def _refuse(*_: object) -> None:
    raise PermanentError("a dry run enqueues nothing", reason="dry_run")


def dry_run_deps(settings: Settings) -> Deps:
    return build_deps(settings, enqueue=_refuse, start=_refuse, notify=_refuse)


def targets(deps: Deps, *, discover: bool, only: list[str] | None = None) -> list[tuple[CustomerLink, bool]]:
    """Every known link (or those of `only`), then (with `discover`) those paging Kinde would add; (link, is_new).

    For `only`, Kinde is paged only when one of them has no link yet.
    """
    wanted = deps.links.all_customer_ids() if only is None else sorted(set(only))
    known = [link for cid in wanted if (link := deps.links.get(cid))]
    seen = {link.customer_id for link in known}
    paging = discover and (only is None or len(known) < len(wanted))
    found = patiently(deps.resolver.discover)() if paging else []
    fresh = {link.customer_id: link for link in found if link.customer_id not in seen}
    if only is not None:
        fresh = {cid: link for cid, link in fresh.items() if cid in wanted}
    return [(link, False) for link in known] + [(link, True) for link in fresh.values()]


def preview(converger: Converger, dry: DryRunKinde, link: CustomerLink, new: bool) -> Preview:
    dry.reset()
    try:
        outcome = patiently(converger.run)(link)
    except ServiceError as exc:
        return Preview(link.customer_id, [], [], dry.calls, new, f"{exc.reason}: {exc}"[:300])
    return Preview(link.customer_id, outcome.added, outcome.removed, dry.calls, new)


def dry_run(
    deps: Deps,
    plans: PlanMap | None,
    *,
    discover: bool,
    only: list[str] | None = None,
    on_start: Callable[[int], None] = lambda _: None,
    on_preview: Callable[[Preview], None] = lambda _: None,
    shadow: ShadowLog | None = None,
) -> list[Preview]:
    """`shadow`: record each target's would-be writes there, as shadow mode does, instead of previewing them
    through `DryRunKinde` (either way nothing is written; `rolesync adopt --from dry-run` reads the record)."""
    dry = DryRunKinde(deps.converger.kinde)
    converger = replace(deps.converger, kinde=dry, plans=plans or deps.converger.plans,
                        grants=DryRunGrants(deps.converger.grants), locks=DryRunLocks(),
                        entitlements=None, snapshots=None, member_cache=None,
                        shadow=shadow)  # fmt: skip  # counts no members; no shadow write in Redis
    found = targets(deps, discover=discover, only=only)
    on_start(len(found))
    previews = []
    for link, new in found:
        previews.append(preview(converger, dry, link, new))
        on_preview(previews[-1])
    missing = sorted(set(only or []) - {p.customer_id for p in previews})
    return previews + [Preview(cid, [], [], 0, error=NOT_LINKED) for cid in missing]
