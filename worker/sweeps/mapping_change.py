"""A changed plans.toml reaches every customer by itself, after a dry run in the log.

A pass recomputes a target's roles under the plans.toml in force (Converger.roles_of), so a new
mapping reaches a customer at its next pass; this makes that pass happen for everyone. Each replica
runs `run` in a forked helper process (`--fork-function`). When the mapping it runs is not the one
the last mapping sweep applied (common/plans/fleet_mapping.py), the replica:

1. logs once, at start-up, who gains and who loses which roles (worker/sweeps/mapping_preview.py, from the
   grant records against the applied mapping stored beside its fingerprint) and records the
   mapping as pending, so a deploy can be rolled back before anything is written;
2. with `ROLESYNC_MAPPING_CHANGE=hold`, stops there: `rolesync reconcile --apply-mapping` sweeps;
3. otherwise waits until every live worker process runs this mapping (in a rolling deploy an old
   worker would converge part of the sweep to the old mapping), takes `keys.MAPPING_SWEEP_LOCK` so
   one replica sweeps, and runs an ordinary reconcile sweep without discovery: one
   `converge_customer` message per linked customer, at the shared Kinde rate, on the converge
   queue, whose actor yields to fresh events (worker/runtime/actors.py). Its end records the mapping as
   applied.

A deployment's first start of this version finds no applied mapping and records its own without a
sweep: its records were written under that very mapping, unless plans.toml changed in the same
deploy (then run `rolesync reconcile` once). A rollback is just another change: the fleet sweeps
back to the mapping it runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import structlog

from common.errors import ConfigError, ServiceError
from common.infra.logs import configure_logging
from common.plans.fleet_mapping import Mapping, MappingStore, SweepProgress
from common.plans.mapping import PlanMap, load_plans
from common.plans.payments import failing_of
from common.settings import MappingChange, Settings
from worker.entrypoints.clients import build_redis
from worker.runtime.heartbeat import worker_fresh_s, worker_id
from worker.sweeps.mapping_preview import preview, records
from worker.sweeps.reconcile import Fleet, Summary, Verdict, sweep
from worker.sweeps.reconcile_schedule import build_fleet

log = structlog.get_logger(__name__)
SWEEP_TIMEOUT_S = 3600.0  # how long the sweeper watches; passes still retrying go on without it
LOCK_MARGIN_S = 300.0
SAMPLE = 50  # changes named one by one in the start-up log; the rest are counted per role


def apply(
    fleet: Fleet,
    store: MappingStore,
    mapping: Mapping,
    *,
    source: str,
    timeout_s: float = SWEEP_TIMEOUT_S,
    on_start: Callable[[int], None] = lambda _: None,
    on_verdict: Callable[[Verdict], None] = lambda _: None,
) -> Summary:
    """Sweep every linked customer under `mapping` (the one the workers run), then record it applied.

    Customers that failed are dead letters and those still retrying stay queued: both converge
    under the workers' mapping when they run, so the mapping counts as applied once all are sent.
    """
    progress = SweepProgress(mapping.fingerprint, 0, 0, time.time())
    store.record_progress(progress)

    def started(total: int) -> None:
        progress.total = total
        store.record_progress(progress)
        on_start(total)

    def ended(verdict: Verdict) -> None:
        progress.done += 1
        store.record_progress(progress)
        on_verdict(verdict)

    log.info("mapping_sweep_started", fingerprint=mapping.fingerprint, source=source)
    summary = sweep(fleet, source=source, timeout_s=timeout_s, discover_first=False,
                    on_start=started, on_verdict=ended)  # fmt: skip
    store.record_applied(replace(mapping, held=False, at=time.time()))
    log.info("mapping_applied", fingerprint=mapping.fingerprint, checked=summary.checked, drift=summary.drift,
             failed=summary.failed, pending=summary.pending)  # fmt: skip
    return summary


def others_running(store: MappingStore, fingerprint: str, fresh_s: float) -> list[str]:
    """The other mappings live workers run (`""`: a worker of a version that records none)."""
    return sorted({found for found in store.running(fresh_s).values() if found != fingerprint})


@dataclass
class Watch:
    """One replica's view of the mapping it runs; `tick` does what is due."""

    fleet: Fleet
    store: MappingStore
    plans: PlanMap
    mode: MappingChange
    fresh_s: float
    holder: str
    announced: bool = False
    waiting_for: tuple[str, ...] = ()

    def tick(self) -> None:
        mapping = Mapping.of(self.plans, held=self.mode == "hold")
        applied = self.store.applied()
        if applied is None:
            if self.store.adopt(mapping):
                log.info("mapping_adopted", fingerprint=mapping.fingerprint, reason="no mapping recorded yet")
            return
        if applied.fingerprint == mapping.fingerprint:
            return
        if not self.announced:
            self.announce(applied, mapping)
        if self.mode == "hold" or not self.fleet_runs(mapping):
            return
        if self.store.take_sweep(self.holder, SWEEP_TIMEOUT_S + LOCK_MARGIN_S):
            try:
                if not self.applied_meanwhile(mapping):
                    apply(self.fleet, self.store, mapping, source="mapping")
            finally:
                self.store.release_sweep(self.holder)

    def announce(self, applied: Mapping, mapping: Mapping) -> None:
        """Log the dry run of `applied` → `mapping` and record the change as pending."""
        old, deps = applied.plan_map(), self.fleet.deps
        failing = failing_of(deps.converger.payments, old, self.plans)
        found = preview(records(deps.links, deps.converger.grants), old, self.plans, failing,
                        deps.converger.targets.hand_roles)  # fmt: skip
        log.info("mapping_change_previewed", applied=applied.fingerprint, running=mapping.fingerprint,
                 customers=found.customers, targets=found.targets, targets_changed=len(found.changes),
                 by_role=found.by_role(), no_longer_managed=sorted(found.unmanaged),
                 changes=[c.describe() for c in found.changes[:SAMPLE]])  # fmt: skip
        if self.mode == "hold":
            hint = "run `rolesync reconcile --apply-mapping` to apply it, or roll the deploy back"
            log.warning("mapping_change_held", running=mapping.fingerprint, hint=hint)
        self.store.record_pending(mapping)
        self.announced = True

    def fleet_runs(self, mapping: Mapping) -> bool:
        others = tuple(others_running(self.store, mapping.fingerprint, self.fresh_s))
        if others and others != self.waiting_for:
            log.info("mapping_sweep_deferred", running=mapping.fingerprint, others=list(others),
                     reason="live workers run another mapping")  # fmt: skip
        self.waiting_for = others
        return not others

    def applied_meanwhile(self, mapping: Mapping) -> bool:
        applied = self.store.applied()
        return applied is not None and applied.fingerprint == mapping.fingerprint


def run() -> None:
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    try:
        plans = load_plans(settings.plans_path)
    except ConfigError as exc:  # the actors fail on the same file and say so; nothing to apply
        log.error("mapping_not_loaded", error=str(exc))
        return
    store = MappingStore(build_redis(settings))
    watch = Watch(build_fleet(settings), store, plans, settings.mapping_change, worker_fresh_s(settings), worker_id())
    while True:
        try:
            watch.tick()
        except ServiceError as exc:  # Redis or Kinde down: the next tick tries again
            log.warning("mapping_check_failed", error=str(exc)[:300], reason=exc.reason)
        time.sleep(settings.mapping_tick_s)
