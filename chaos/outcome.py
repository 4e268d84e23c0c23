"""What a suite checks at the end: queues drained, every customer's roles, the role writes Kinde saw."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Mapping
from typing import Any

import redis

from bench.pipe_idle import idle
from common import keys
from common.messages import EVENT_QUEUES, PASS_QUEUES
from launch.processes import wait_until
from sandbox.client import SandboxClient

QUEUES = PASS_QUEUES


def pending_event_ids(r: redis.Redis) -> set[str]:
    """Event ids whose message is still queued, delayed or in flight: late, not lost."""
    found: set[str] = set()
    queues = EVENT_QUEUES
    names = [name for q in queues for name in (keys.queue_messages(q), keys.delay_queue_messages(q))]
    for name in names:
        for raw in r.hvals(name):
            found.add(str(json.loads(raw)["args"][0].get("event_id")))
    return found


def covered_in_redis(r: redis.Redis, event_id: str) -> bool:
    """The worker counted this event for its customer and a pass since converged past it (coalesce.py).

    The log-based accounting cannot see an event handled by a worker whose last lines died with a
    SIGKILLed Dramatiq process; this is the ground truth it is checked against.
    """
    raw = r.get(keys.event_generation(event_id))
    if not raw:
        return False
    customer, _, gen = raw.decode().rpartition("|") if isinstance(raw, bytes) else str(raw).rpartition("|")
    return int(r.get(keys.customer_converged(customer)) or 0) >= int(gen)


def dramatiq_dead_event_ids(r: redis.Redis) -> set[str]:
    """Event ids Dramatiq itself dead-lettered (its XQ): nothing in rolesync replays these."""
    names = [keys.queue_messages(f"{queue}.XQ") for queue in EVENT_QUEUES]
    return {str(json.loads(raw)["args"][0].get("event_id")) for name in names for raw in r.hvals(name)}


def roles_by_user(kinde: SandboxClient) -> dict[str, list[str]]:
    return {row["user_id"]: row["roles"] for row in kinde.assignments()}


def wrong_users(kinde: SandboxClient, expected: Mapping[str, list[str]]) -> list[str]:
    held = roles_by_user(kinde)
    return [user for user, want in expected.items() if sorted(held.get(user, [])) != sorted(want)]


def wait_converged(kinde: SandboxClient, r: redis.Redis, expected: Mapping[str, list[str]], timeout: float) -> float:
    """Seconds until no backlog and every user holds the expected roles; wrong users stay wrong on timeout."""
    started = time.monotonic()
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: idle(r, QUEUES) and not wrong_users(kinde, expected), timeout=timeout, interval=1.0)
    return time.monotonic() - started


def role_writes(calls: list[dict[str, Any]]) -> int:
    """Successful POST/DELETE role assignments the sandbox served."""
    return sum(1 for c in calls if c["method"] in ("POST", "DELETE") and "/roles" in c["path"] and c["status"] == 200)
