"""The recovery sweep: a forked helper process that puts back what dead workers held, every few seconds.

Parts 1 and 3 of recovery (worker/runtime/recovery/__init__.py). Dramatiq returns a dead worker's ack sets
only when a 0.1 %-chance "maintenance" roll hits that queue, which measured 708 s after a SIGKILL;
forcing it every `janitor_interval_s` bounds recovery at `crash_bound_s` (docs/stack-notes.md, Crash
recovery). The same pass puts back delayed messages a *live* worker kept past their eta
(worker/runtime/recovery/overdue.py). Every worker replica runs one, started by the launcher with
`--fork-function worker.entrypoints.recovery_sweep:run` (the process; this module is its pass); sweeps of
several replicas at once are harmless, as each requeue is one atomic step that moves an id out of its ack set
first.
"""

from __future__ import annotations

from collections.abc import Iterable

from dramatiq.brokers.redis import RedisBroker

from common.messages import LIVE_QUEUES
from worker.runtime.recovery.overdue import requeue_overdue


def sweep(broker: RedisBroker, grace_s: float, queues: Iterable[str] = LIVE_QUEUES) -> None:
    """One pass over `queues` and their delay queues; `broker` must have a maintenance chance of 100 %."""
    for queue in queues:
        for name in (queue, f"{queue}.DQ"):
            broker.do_qsize(name)  # any non-ack command runs maintenance
        requeue_overdue(broker.client, queue, grace_s)  # live workers' strandings, which maintenance skips
