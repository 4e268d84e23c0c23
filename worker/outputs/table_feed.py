"""Feed the Postgres entitlements table from the snapshot store: a SnapshotStore that notes each change.

Wraps the Redis snapshot store (common/entitlements/snapshots.py) when `ROLESYNC_POSTGRES_URL` is set: every
put, removal or deleted user is stored as before, then noted for the table in Redis
(common/table/table_outbox.py) and written to Postgres at once (worker/outputs/table_sync.py). A failed write
never fails the pass: the roles and the snapshot are written already, and the change waits for the
drain. After a failure the in-pass writes pause for `QUIET_S`, so a pass does not wait for a
Postgres that is down (each attempt may wait `common.table.postgres.POOL_WAIT_S` under a target lease).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from common.entitlements.grants import Target
from common.entitlements.snapshots import SnapshotStore, TargetSnapshot
from common.errors import RetryableError
from common.table.table_outbox import Change, TableOutbox
from common.table.table_rows import TableRow, row_of
from worker.outputs.table_sync import TableSync

log = structlog.get_logger(__name__)
QUIET_S = 5.0


def no_usage(customer_id: str) -> dict[str, dict[str, Any]]:
    return {}


@dataclass
class TableFeed:
    snapshots: SnapshotStore
    sync: TableSync
    usage_of: Callable[[str], dict[str, dict[str, Any]]] = no_usage  # a customer's readings by feature
    clock: Callable[[], float] = time.time
    _quiet_until: float = field(default=0.0, init=False)

    @property
    def outbox(self) -> TableOutbox:
        return self.sync.outbox

    def put(self, snapshot: TargetSnapshot) -> None:
        self.snapshots.put(snapshot)
        self._changed(snapshot.target, row_of(snapshot, self.usage_of))

    def remove(self, target: Target) -> None:
        self.snapshots.remove(target)
        self._changed(target, None)

    def forget_user(self, user_id: str) -> None:
        targets = [s.target for s in self.snapshots.of_user(user_id)]
        # noted before the snapshots go: a retry after a failure finds them again
        changes = [Change(t.key, self.outbox.note(t.key, None, self.clock()), None) for t in targets]
        self.snapshots.forget_user(user_id)
        for change in changes:
            self._attempt(change)

    def of_user(self, user_id: str) -> list[TargetSnapshot]:
        return self.snapshots.of_user(user_id)

    def _changed(self, target: Target, row: TableRow | None) -> None:
        self._attempt(Change(target.key, self.outbox.note(target.key, row, self.clock()), row))

    def _attempt(self, change: Change) -> None:
        if self.clock() < self._quiet_until:
            return
        try:
            self.sync.write(change)
        except RetryableError as exc:
            self._quiet_until = self.clock() + QUIET_S
            log.warning("table_write_deferred", target=change.target_key, error=str(exc)[:300], reason=exc.reason)
