"""A lost Redis noticed and healed: each worker replica's helper process (`--fork-function`).

Every `CHECK_S` it checks the data epoch (common/infra/data_epoch.py). When the epoch it saw is gone (a FLUSHALL,
a new empty instance) or went back (a restore from an older backup), it logs `redis_data_lost` and notes the
loss (common/infra/data_loss.py). A noted loss not yet healed is healed by exactly one replica, the one that takes
`keys.DATA_HEAL_LOCK` (a lease renewed while it runs: a healer that dies hands over within `LEASE_MS`): an
ordinary reconcile sweep (worker/sweeps/reconcile.py) that first rebuilds the customer index from Kinde's users and
orgs, then sends one converge pass per linked customer through the fleet at the shared Kinde rate. Events
parked or queued when the data went are covered: each pass re-reads the customer's whole state from Kinde.
What Kinde does not hold cannot come back (docs/reliability.md, "Losing Redis").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis
import structlog

from common import keys
from common.errors import ContendedError, ServiceError
from common.infra import data_loss
from common.infra.data_epoch import EpochWatch
from common.infra.data_loss import DataLoss
from common.infra.logs import configure_logging
from common.settings import Settings
from worker.convergence.lease import Lease, RedisLeases
from worker.entrypoints.clients import build_redis
from worker.runtime.heartbeat import worker_id
from worker.sweeps.reconcile import Fleet, sweep
from worker.sweeps.reconcile_schedule import build_fleet

log = structlog.get_logger(__name__)
CHECK_S = 2.0
LEASE_MS = 60_000
HEAL_TIMEOUT_S = 3600.0  # how long the healer watches the passes; those still retrying go on without it
SOURCE = "redis_data_lost"


@dataclass
class Healer:
    client: redis.Redis
    watch: EpochWatch
    fleet: Fleet
    holder: str
    timeout_s: float = HEAL_TIMEOUT_S

    def tick(self) -> None:
        if self.watch.check() == "lost" and self.watch.seen is not None:
            log.error("redis_data_lost", epoch=self.watch.seen.id, hint=data_loss.HINT)
            data_loss.note(self.client, self.watch.seen.id, time.time(), self.holder)
        found = data_loss.last(self.client)
        if found is not None and found.healing:
            self.try_heal(found)

    def try_heal(self, found: DataLoss) -> None:
        leases = RedisLeases(self.client, ttl_ms=LEASE_MS, poll_s=0.0, retry_after_s=CHECK_S)
        try:
            with leases.hold(keys.DATA_HEAL_LOCK, "the heal") as lease, renewing(lease):
                self.heal(found)
        except ContendedError:  # another replica heals it
            return

    def heal(self, found: DataLoss) -> None:
        started = time.time()
        data_loss.advance(self.client, found.epoch, "healing")
        log.info("redis_data_heal_started", epoch=found.epoch)
        summary = sweep(self.fleet, source=SOURCE, timeout_s=self.timeout_s)
        data_loss.advance(self.client, found.epoch, "healed", healed_at=time.time(), customers=summary.checked,
                          failed=summary.failed + summary.pending)  # fmt: skip
        log.info("redis_data_healed", epoch=found.epoch, customers=summary.checked, drift=summary.drift,
                 failed=summary.failed, pending=summary.pending, seconds=round(time.time() - started, 1))  # fmt: skip


@contextmanager
def renewing(lease: Lease) -> Iterator[None]:
    """Renew `lease` from a daemon thread every third of its time, until the block ends."""
    stop = threading.Event()
    threading.Thread(target=_renew, args=(lease, stop), name="rolesync-heal-lease", daemon=True).start()
    try:
        yield
    finally:
        stop.set()


def _renew(lease: Lease, stop: threading.Event) -> None:
    while not stop.wait(LEASE_MS / 3000):
        try:
            lease.check()
        except ServiceError as exc:  # lost or unreachable: the heal goes on, another replica may take it over
            log.warning("redis_data_heal_lease_not_renewed", reason=exc.reason)


def run() -> None:
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    client = build_redis(settings)
    healer = Healer(client, EpochWatch(client), build_fleet(settings), worker_id())
    while True:
        try:
            healer.tick()
        except ServiceError as exc:  # Redis unreachable (its 503s are the ingest's); the next tick tries again
            log.warning("redis_data_check_failed", error=str(exc)[:300], reason=exc.reason)
        time.sleep(CHECK_S)
