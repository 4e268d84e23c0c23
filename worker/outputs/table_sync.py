"""Bring the Postgres entitlements table up to the changes waiting in Redis (common/table/table_outbox.py).

`TableSync.sync` writes one target's newest change and clears it; it is called in the pass right
after the snapshot changed (worker/outputs/table_feed.py) and by the drain below. With
`ROLESYNC_POSTGRES_URL` set, each replica runs `run` in a forked helper process
(`--fork-function`): every `DRAIN_EVERY_S` it writes every pending target, oldest first, reading
each one's newest change at that moment, so a retry always writes what is in force now. While
Postgres is down the changes wait (the roles were written already) and `rolesync status` shows the
lag; when it is back the next tick catches up. Replicas draining at once are safe: each write is
checked under a per-target lock (common/table/entitlements_table.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis
import structlog

from common.errors import RetryableError, ServiceError
from common.infra.logs import configure_logging
from common.settings import Settings
from common.table.entitlements_table import EntitlementsTable
from common.table.postgres import REFUSED
from common.table.table_outbox import Change, TableOutbox
from worker.entrypoints.clients import build_redis, build_table

log = structlog.get_logger(__name__)
DRAIN_EVERY_S = 1.0
BATCH = 500


@dataclass(frozen=True)
class TableSync:
    outbox: TableOutbox
    table: EntitlementsTable

    def sync(self, target_key: str) -> bool:
        """Write the target's newest change; True if the table has it (or a newer one) now."""
        change = self.outbox.newest(target_key)
        if change is None:
            self.outbox.forget(target_key)  # written and cleared by another writer meanwhile
            return True
        return self.write(change)

    def write(self, change: Change) -> bool:
        """Write a change just noted (or read); True if it was still the newest and is cleared now."""
        if self.table.apply(change, lambda: self._still_newest(change)):
            return self.outbox.written(change)
        return False

    def drain(self, limit: int = BATCH) -> int:
        """Write up to `limit` pending targets, oldest first; how many were written.

        A change Postgres refuses stays pending (`rolesync status` shows it) without holding up the
        others, and so does one this version cannot read (a newer worker's row shape, during a rolling
        deploy: the newer workers' drains write it); no connection at all ends the drain until the next tick.
        """
        written = 0
        for key in self.outbox.pending(limit):
            try:
                written += self.sync(key)
            except RetryableError as exc:
                if exc.reason != REFUSED:
                    raise
                log.warning("table_write_refused", target=key, error=str(exc)[:300])
            except (TypeError, ValueError, KeyError) as exc:  # raised out of the helper's loop, it ended the drain
                log.warning("table_change_unreadable", target=key, error=f"{type(exc).__name__}: {exc}"[:300])
        return written

    def _still_newest(self, change: Change) -> bool:
        newest = self.outbox.newest(change.target_key)
        return newest is not None and newest.generation == change.generation


def build_sync(settings: Settings, client: redis.Redis, *, pool_size: int) -> TableSync:
    """The outbox in `client` and the table it feeds: in the pass (bootstrap) and in the drain's own process."""
    return TableSync(TableOutbox(client), build_table(settings, pool_size=pool_size))


def tick(sync: TableSync, failing: bool) -> bool:
    """One drain; whether it failed. Logs an outage once when it starts and once when it ends."""
    try:
        written = sync.drain()
    except ServiceError as exc:
        if not failing:
            log.warning("table_sync_failed", error=str(exc)[:300], reason=exc.reason)
        return True
    if failing:
        log.info("table_sync_recovered", written=written)
    return False


def run() -> None:
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    if not settings.postgres_url:
        return
    sync, failing = build_sync(settings, build_redis(settings), pool_size=2), False  # one row at a time
    while True:
        failing = tick(sync, failing)
        time.sleep(DRAIN_EVERY_S)
