"""The plans.toml mapping for on-call: what `rolesync status` says of it, and `reconcile --apply-mapping`.

The workers record the mapping they run and the one a sweep applied (common/plans/fleet_mapping.py,
worker/sweeps/mapping_change.py). With `ROLESYNC_MAPPING_CHANGE=hold` a changed mapping waits, its dry
run in the workers' start-up log, until on-call applies it here: the same sweep the workers run,
driven from this process, applying the mapping the workers recorded (never this process's own
plans file, which may differ).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

import redis

from common import keys
from common.errors import PermanentError
from common.infra.connections import redis_errors
from common.plans.fleet_mapping import Mapping, MappingStore
from worker.sweeps.mapping_change import LOCK_MARGIN_S, apply, others_running
from worker.sweeps.reconcile import Fleet, Summary, Verdict


@dataclass(frozen=True)
class MappingState:
    applied: str | None  # fingerprint a sweep applied; None before any worker of this version started
    running: list[str]  # fingerprints live workers run ("" = a worker that records none)
    pending: str | None  # a running mapping no sweep has applied yet
    held: bool  # it waits for `rolesync reconcile --apply-mapping`
    sweep_percent: int | None  # the sweep applying it, when one runs

    @property
    def summary(self) -> str:
        if self.pending is None:
            return f"in step ({self.applied or 'none recorded yet'})"
        if self.sweep_percent is not None:
            return f"mapping changed, sweep {self.sweep_percent} % done ({self.applied} → {self.pending})"
        if self.held:
            return f"mapping changed, held ({self.applied} → {self.pending}): `rolesync reconcile --apply-mapping`"
        return f"mapping changed, sweep not started ({self.applied} → {self.pending})"

    def problems(self) -> list[str]:
        found = []
        if self.pending is not None and self.held and self.sweep_percent is None:
            found.append(f"plans.toml mapping {self.pending} is held: read the workers' mapping_change_previewed "
                         "log line, then `rolesync reconcile --apply-mapping` or roll the deploy back")  # fmt: skip
        if len(self.running) > 1:
            found.append(f"workers run {len(self.running)} different plans.toml mappings ({', '.join(self.running)}); "
                         "a mapping sweep waits until they run one")  # fmt: skip
        return found


def state(store: MappingStore, fresh_s: float) -> MappingState:
    applied, pending, progress = store.applied(), store.pending(), store.progress()
    running = sorted({f or "unrecorded" for f in store.running(fresh_s).values()})
    if pending is not None and applied is not None and pending.fingerprint == applied.fingerprint:
        pending = None  # a rollback to the applied mapping: nothing left to apply
    sweeping = progress is not None and pending is not None and progress.fingerprint == pending.fingerprint
    return MappingState(
        applied.fingerprint if applied else None,
        running,
        pending.fingerprint if pending else None,
        bool(pending and pending.held),
        progress.percent if sweeping and progress else None,
    )


def ready_to_apply(store: MappingStore, fresh_s: float) -> Mapping:
    """The pending mapping, when one waits and every live worker runs it; else the PermanentError saying why not."""
    pending, applied = store.pending(), store.applied()
    if pending is None or (applied is not None and applied.fingerprint == pending.fingerprint):
        raise PermanentError("no changed plans.toml mapping waits to be applied", reason="nothing_to_apply")
    others = others_running(store, pending.fingerprint, fresh_s)
    if others:
        raise PermanentError(f"live workers also run the mappings {others}, not only {pending.fingerprint}: "
                             "finish (or roll back) the deploy first", reason="mapping_mixed")  # fmt: skip
    return pending


def linked_customers(client: redis.Redis) -> int:
    """How many customers a sweep covers (the linked ones; discovery may add a few)."""
    with redis_errors("counting the linked customers"):
        return int(client.scard(keys.LINKS_INDEX))


def apply_pending(
    fleet: Fleet,
    store: MappingStore,
    fresh_s: float,
    *,
    timeout_s: float,
    on_start: Callable[[int], None] = lambda _: None,
    on_verdict: Callable[[Verdict], None] = lambda _: None,
) -> Summary:
    """Sweep the pending mapping now (every live worker must run it), then record it applied."""
    pending = ready_to_apply(store, fresh_s)
    holder = f"cli:{socket.gethostname()}:{os.getpid()}"
    if not store.take_sweep(holder, timeout_s + LOCK_MARGIN_S):
        raise PermanentError("a mapping sweep is running already (see `rolesync status`)", reason="mapping_sweeping")
    try:
        return apply(fleet, store, pending, source="cli", timeout_s=timeout_s, on_start=on_start,
                     on_verdict=on_verdict)  # fmt: skip
    finally:
        store.release_sweep(holder)
