"""The recovery sweep: a forked helper process that puts back what dead workers held, every few seconds.

Parts 1 and 3 of recovery (worker/runtime/recovery/__init__.py). Dramatiq returns a dead worker's ack sets
only when a 0.1 %-chance "maintenance" roll hits that queue, which measured 708 s after a SIGKILL;
forcing it every `janitor_interval_s` bounds recovery at `crash_bound_s` (docs/stack-notes.md, Crash
recovery). The same pass puts back delayed messages a *live* worker kept past their eta
(worker/runtime/recovery/overdue.py). Every worker replica runs one, started by the launcher with
`--fork-function worker.runtime.recovery:run`; sweeps of several replicas at once are harmless, as each
requeue is one atomic step that moves an id out of its ack set first.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import structlog
from dramatiq.brokers.redis import MAINTENANCE_SCALE, RedisBroker

from common.infra.logs import configure_logging
from common.messages import LIVE_QUEUES
from common.settings import Settings
from worker.runtime.recovery.bound import crash_bound_s, overdue_grace_s
from worker.runtime.recovery.overdue import requeue_overdue

log = structlog.get_logger(__name__)


def sweep(broker: RedisBroker, grace_s: float, queues: Iterable[str] = LIVE_QUEUES) -> None:
    """One pass over `queues` and their delay queues; `broker` must have a maintenance chance of 100 %."""
    for queue in queues:
        for name in (queue, f"{queue}.DQ"):
            broker.do_qsize(name)  # any non-ack command runs maintenance
        requeue_overdue(broker.client, queue, grace_s)  # live workers' strandings, which maintenance skips


def run() -> None:
    from worker.runtime.broker import build_broker  # late: worker.broker imports this package

    settings = Settings.from_env()
    configure_logging(settings.log_level)
    sweeper = build_broker(settings)
    sweeper.maintenance_chance = MAINTENANCE_SCALE
    log.info("recovery_sweeper_started", crash_bound_s=crash_bound_s(settings), every_s=settings.janitor_interval_s)
    while True:
        try:
            sweep(sweeper, grace_s=overdue_grace_s(settings))
        except Exception as exc:  # Redis down: keep trying, the workers report it too
            log.warning("recovery_sweep_failed", error=type(exc).__name__)
        time.sleep(settings.janitor_interval_s)
