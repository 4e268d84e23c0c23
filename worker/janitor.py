"""A forked helper process that forces Dramatiq's maintenance on our queues every few seconds.

Dramatiq only returns a dead worker's in-flight messages when a 0.1 %-chance "maintenance" roll
hits that queue, which measured 708 s after a SIGKILL; forcing it every `janitor_interval_s`
bounds recovery at about `heartbeat_timeout` (60 s) (docs/stack-notes.md, Crash recovery). It also puts back
delayed messages a *live* worker lost from memory across a Redis reconnect (worker/stranded.py),
overdue by more than the same heartbeat timeout. Started by the launcher with
`--fork-function worker.janitor:run`.
"""

from __future__ import annotations

import time

import structlog
from dramatiq.brokers.redis import MAINTENANCE_SCALE, RedisBroker

from common.logs import configure_logging
from common.messages import BULK_QUEUE, CONVERGE_QUEUE, EVENTS_QUEUE, REBUILD_QUEUE
from common.settings import Settings
from worker.broker import build_broker
from worker.stranded import requeue_stranded

log = structlog.get_logger(__name__)
LIVE_QUEUES = (EVENTS_QUEUE, BULK_QUEUE, CONVERGE_QUEUE, REBUILD_QUEUE)
QUEUES = tuple(q for live in LIVE_QUEUES for q in (live, f"{live}.DQ"))


def sweep(broker: RedisBroker, grace_s: float) -> None:
    for queue in QUEUES:
        broker.do_qsize(queue)  # any non-ack command runs maintenance when the chance is 100 %
    for queue in LIVE_QUEUES:  # live workers' strandings, which maintenance skips
        requeue_stranded(broker.client, queue, grace_s)


def run() -> None:
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    janitor = build_broker(settings)
    janitor.maintenance_chance = MAINTENANCE_SCALE
    while True:
        try:
            sweep(janitor, grace_s=settings.heartbeat_timeout_s)
        except Exception as exc:  # Redis down: keep trying, the workers report it too
            log.warning("janitor_sweep_failed", error=type(exc).__name__)
        time.sleep(settings.janitor_interval_s)
