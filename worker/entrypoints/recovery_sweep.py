"""The recovery sweep's process: a forked helper of every worker replica (worker/runtime/recovery/__init__.py).

Started by the launcher with `--fork-function worker.entrypoints.recovery_sweep:run`. It builds its own broker
(worker/runtime/broker.py) with a maintenance chance of 100 % and runs `sweeper.sweep` every
`ROLESYNC_JANITOR_INTERVAL_S`. It lives here, beside the other processes, and not in worker/runtime/recovery/:
the broker imports recovery (its consumers reclaim their own acks), so recovery must not import the broker.
"""

from __future__ import annotations

import time

import structlog
from dramatiq.brokers.redis import MAINTENANCE_SCALE

from common.infra.logs import configure_logging
from common.settings import Settings
from worker.runtime.broker import build_broker
from worker.runtime.recovery.bound import crash_bound_s, overdue_grace_s
from worker.runtime.recovery.sweeper import sweep

log = structlog.get_logger(__name__)


def run() -> None:
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
