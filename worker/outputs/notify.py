"""Tell the app when what a target holds changed: queue one `entitlements.updated` webhook per change.

`NotifyingSnapshots` wraps the snapshot store (common/entitlements/snapshots.py) that a pass writes under the
target's lease: before a snapshot replaces the stored one it compares the two, and only when what
the target holds differs does it queue a notification for the `notify_app` actor
(worker/outputs/notify_delivery.py), which POSTs it off the pass. Read times, `computed_at` and generations
are left out of the comparison: a duplicate event or a reconcile pass re-reads the same state and
must send nothing. A target that holds nothing (no roles, plans or features, whoever covers it), or
whose membership or user is gone, is sent as `{org_code, user_id, removed: true}`; one that never
held anything is not sent at all.

The notification is queued *before* the snapshot is stored: if queueing fails, the pass fails and
its retry finds the change again. A store write failing after the queueing means the retry sends
the same change once more under a new id; receivers treat the body as state, so that is harmless.
Each notification gets its `webhook-id` here, once, so every retry and replay of it carries the same
id and the receiver can drop duplicates.

The data is the target as the read API shows it (`TargetSnapshot.to_dict`, api/views.py) without the
metered usage, which changes on every usage report and is read from the API.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from common.entitlements.grants import Target
from common.entitlements.snapshots import SnapshotStore, TargetSnapshot

log = structlog.get_logger(__name__)
NOTIFICATION_TYPE = "entitlements.updated"
_VOLATILE = frozenset({"computed_at", "read_at", "entitlements_read_at", "generation"})
Send = Callable[[dict[str, Any]], None]  # puts a notification on the `notify_app` queue


def held(snapshot: TargetSnapshot | None) -> dict[str, Any] | None:
    """What the target holds, for comparison: None when nothing, else the public shape without times."""
    if snapshot is None or snapshot.holds_nothing():
        return None
    steady: dict[str, Any] = _steady(snapshot.to_dict())
    return steady


def _steady(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _steady(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [_steady(v) for v in value]
    return value


def notification(target: Target, snapshot: TargetSnapshot | None, now: float) -> dict[str, Any]:
    """The queued message: the webhook id, the exact body to sign and POST, and the target (for on-call)."""
    data = snapshot.to_dict() if snapshot is not None and held(snapshot) is not None else _removed(target)
    at = datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z")
    body = json.dumps({"type": NOTIFICATION_TYPE, "timestamp": at, "data": data}, sort_keys=True)
    webhook_id = f"msg_{uuid.uuid4().hex}"
    return {"type": NOTIFICATION_TYPE, "event_id": webhook_id, "org_code": target.org_code,
            "user_id": target.user_id, "body": body}  # fmt: skip


def _removed(target: Target) -> dict[str, Any]:
    return {"org_code": target.org_code, "user_id": target.user_id, "removed": True}


@dataclass(frozen=True)
class NotifyingSnapshots:
    """A SnapshotStore that queues a notification whenever what a target holds changes."""

    inner: SnapshotStore
    send: Send
    clock: Callable[[], float] = field(default=time.time)

    def put(self, snapshot: TargetSnapshot) -> None:
        if held(self._stored(snapshot.target)) != held(snapshot):
            self._notify(snapshot.target, snapshot)
        self.inner.put(snapshot)

    def remove(self, target: Target) -> None:
        if held(self._stored(target)) is not None:
            self._notify(target, None)
        self.inner.remove(target)

    def forget_user(self, user_id: str) -> None:
        for snapshot in self.inner.of_user(user_id):
            if held(snapshot) is not None:
                self._notify(snapshot.target, None)
        self.inner.forget_user(user_id)

    def of_user(self, user_id: str) -> list[TargetSnapshot]:
        return self.inner.of_user(user_id)

    def _stored(self, target: Target) -> TargetSnapshot | None:
        return next((s for s in self.inner.of_user(target.user_id) if s.target == target), None)

    def _notify(self, target: Target, snapshot: TargetSnapshot | None) -> None:
        sent = notification(target, snapshot, self.clock())
        self.send(sent)
        log.info("notification_queued", webhook_id=sent["event_id"], org_code=target.org_code,
                 user_id=target.user_id, removed=held(snapshot) is None)  # fmt: skip


def notifying(store: SnapshotStore, send: Send | None) -> SnapshotStore:
    """`store` as is when no ROLESYNC_NOTIFY_URL is set (`send` None), else wrapped."""
    return store if send is None else NotifyingSnapshots(store, send)
