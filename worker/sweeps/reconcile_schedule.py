"""`rolesync worker --reconcile-every 6h`: one reconcile sweep per interval across every replica.

Each replica runs this loop in a forked helper process (`--fork-function`), and every tick each
tries to take the interval's slot, `keys.RECONCILE_SCHEDULER_LOCK`, with SET NX PX for one whole
interval. Only the replica that took it sweeps; the others find it held until the interval has
passed. A replica that dies mid-sweep loses nothing: the converge messages it enqueued are on the
broker, and the next slot opens when the lease expires. Restarts do not cause extra sweeps, because
the slot lives in Redis, not in the process.
"""

from __future__ import annotations

from functools import partial

import redis
import structlog

from common import keys
from common.infra.deadletters import RedisDeadLetterStore
from common.infra.logs import configure_logging
from common.settings import Settings
from worker.entrypoints.bootstrap import build_fleet_deps
from worker.entrypoints.clients import build_redis
from worker.runtime.broker import build_broker
from worker.runtime.heartbeat import worker_id
from worker.sweeps import interval_slot
from worker.sweeps.reconcile import Fleet, sweep

log = structlog.get_logger(__name__)
MAX_TICK_S = 60.0


def build_fleet(settings: Settings) -> Fleet:
    """A sweeper's own broker, worker dependencies and Redis client (worker/entrypoints/bootstrap.py, after fork)."""
    broker = build_broker(settings)
    client = build_redis(settings)
    return Fleet(build_fleet_deps(settings, broker), RedisDeadLetterStore(client), broker, client)


def take_slot(client: redis.Redis, every_s: float, holder: str) -> bool:
    return interval_slot.take_slot(client, keys.RECONCILE_SCHEDULER_LOCK, every_s, holder, what="reconcile")


def tick(fleet: Fleet, every_s: float) -> bool:
    """Sweep if this replica takes the interval's slot; True if it swept."""
    if not take_slot(fleet.redis, every_s, worker_id()):
        return False
    log.info("reconcile_started", source="scheduler")
    summary = sweep(fleet, source="scheduler", timeout_s=every_s / 2)
    log.info("reconcile_finished", checked=summary.checked, drift=summary.drift, failed=summary.failed)
    return True


def run() -> None:
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    every_s = settings.reconcile_every_s
    if every_s <= 0:
        return
    fleet = build_fleet(settings)
    # Redis or Kinde down: the next sweep runs when this slot expires
    interval_slot.every_interval(partial(tick, fleet, every_s), pause_s=min(MAX_TICK_S, every_s / 10),
                                 failed="reconcile_failed")  # fmt: skip
