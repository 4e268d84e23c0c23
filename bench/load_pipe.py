"""Part (b) of `python -m bench load`: the whole pipe at the highest steady rate the box holds.

Plan changes are asked of the sandbox at a fixed rate (open loop), each user in turn, alternating
two plans; every change fires Kinde's three billing webhooks (cancelled, created, changed) at the
ingest, and the workers converge the user's roles. A rate "holds" when every change got its role
writes, all users are correct within `--drain-s` of the last change, and p99 stays under
`--p99-limit-s`. Latency = from asking for the change (its webhooks fire at once) to the
sandbox's timestamp of the last role write for that user (bench.worker.latencies).
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import redis

from bench.worker import endpoint, latencies
from common import keys
from common.messages import EVENT_QUEUES
from launch.processes import wait_until
from sandbox.client import SandboxClient

PLANS = ("plan_client", "plan_subscriber")


@dataclass
class Users:
    ids: list[str]
    customers: list[str]
    plan: dict[str, str]  # user id -> the plan last asked for

    def roles_wanted(self, user: str) -> list[str]:
        return [f"role_{self.plan[user].removeprefix('plan_')}"]


@dataclass
class Step:
    rate: float
    seconds: float
    changes: int = 0
    started: dict[str, list[float]] = field(default_factory=dict)
    t0: float = 0.0
    t1: float = 0.0
    drained_at: float | None = None


def sign_up(kinde: SandboxClient, n: int) -> Users:
    made = [kinde.create_user(email=f"load{i}@example.com") for i in range(n)]
    users = Users([u["id"] for u in made], [u["customer_id"] for u in made], {})
    for user, customer in zip(users.ids, users.customers, strict=True):
        kinde.change_plan(customer, PLANS[1])
        users.plan[user] = PLANS[1]
    drain(kinde, users, timeout=300)
    return users


def drain(kinde: SandboxClient, users: Users, timeout: float) -> bool:
    """Wait until every user holds the roles of its last plan; False after `timeout` s."""
    pending = set(users.ids)

    def settled() -> bool:
        pending.difference_update([u for u in list(pending) if kinde.user_roles(u) == users.roles_wanted(u)])
        return not pending

    try:
        wait_until(settled, timeout=timeout, interval=0.2, what="users' roles")
    except TimeoutError:
        return False
    return True


def drive(kinde: SandboxClient, users: Users, step: Step, drain_s: float) -> Step:
    """Ask for plan changes at `step.rate`/s for `step.seconds`, round-robin over the users."""
    step.t0 = time.time()
    interval = 1.0 / step.rate
    while (due := step.t0 + step.changes * interval) < step.t0 + step.seconds:
        if (wait := due - time.time()) > 0:
            time.sleep(wait)  # pacing the open loop, not waiting for a condition
        change(kinde, users, step)
    step.t1 = time.time()
    if drain(kinde, users, timeout=drain_s):
        step.drained_at = time.time()
    return step


def change(kinde: SandboxClient, users: Users, step: Step) -> None:
    i = step.changes % len(users.ids)
    user = users.ids[i]
    users.plan[user] = PLANS[0] if users.plan[user] == PLANS[1] else PLANS[1]
    step.started.setdefault(user, []).append(time.time())
    kinde.change_plan(users.customers[i], users.plan[user])
    step.changes += 1


def figures(kinde: SandboxClient, step: Step, calls_before: int) -> dict[str, Any]:
    calls = kinde.calls()
    lat = latencies(calls, step.started, step.t0)
    end = step.drained_at or time.time()
    window = [c for c in calls[calls_before:] if c["time"] <= end]
    events = {d["event_id"] for d in kinde.deliveries() if step.t0 <= d["time"] <= end}
    q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else [float("nan")] * 99
    span = max(step.t1 - step.t0, step.seconds)
    by_endpoint: dict[str, int] = {}
    for call in window:
        by_endpoint[endpoint(call)] = by_endpoint.get(endpoint(call), 0) + 1
    return {
        "rate_changes_per_s": step.rate, "seconds": round(span, 1), "changes": step.changes,
        "changes_with_writes": len(lat), "webhooks": len(events), "webhooks_per_s": round(len(events) / span, 1),
        "p50_s": round(q[49], 3), "p99_s": round(q[98], 3), "max_s": round(max(lat, default=float("nan")), 3),
        "drained_s_after_last_change": round(step.drained_at - step.t1, 1) if step.drained_at else None,
        "kinde_calls": len(window), "kinde_calls_per_event": round(len(window) / max(1, len(events)), 2),
        "kinde_calls_per_change": round(len(window) / max(1, step.changes), 2),
        "kinde_calls_by_endpoint": dict(sorted(by_endpoint.items())),
        "kinde_429s": sum(1 for c in window if c["status"] == 429),
    }  # fmt: skip


def held(result: dict[str, Any], p99_limit_s: float) -> bool:
    complete = result["changes_with_writes"] >= result["changes"]
    return complete and result["drained_s_after_last_change"] is not None and result["p99_s"] <= p99_limit_s


@dataclass
class Memory:
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # time, used_memory, queue length


@contextmanager
def sampling(r: redis.Redis, every_s: float = 1.0) -> Iterator[Memory]:
    """Redis used_memory and queue depth every `every_s` while the block runs."""
    memory, stop = Memory(), threading.Event()

    def loop() -> None:
        while not stop.is_set():
            queued = sum(int(r.hlen(keys.queue_messages(q))) for q in EVENT_QUEUES)  # a burst goes bulk
            memory.samples.append((time.time(), int(r.info("memory")["used_memory"]), queued))
            stop.wait(every_s)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield memory
    finally:
        stop.set()
        thread.join(timeout=5)
