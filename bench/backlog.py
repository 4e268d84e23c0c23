"""`python -m bench backlog`: bulk work drains at the Kinde rate while fresh sign-ups still go first.

Everything real and local, as in `bench worker` (bench/worker.py `stack`): an embedded Valkey, `rolesync
sandbox` with `--latency-ms` on every call and a token bucket of R req/s answering 429 beyond it,
`rolesync ingest` receiving its signed webhooks, `rolesync worker` with KINDE_API_RPS = headroom x R.
The sandbox is bulk-seeded with `--customers` users, each with a billing customer already on a plan and
holding its role (no webhooks), so the burst below changes existing customers' plans: the ingest routes
only those to the bulk queue (a first plan is always fresh). Two measured phases, each with one new
sign-up (a user, then its first plan, both through webhooks) every `--signup-every` seconds:

1. Reconcile: `rolesync reconcile` discovers the customers (an index rebuild) and sweeps all of them:
   thousands of bulk passes with nothing else queued but the sign-ups. Share of R while it runs.
2. Backlog: `--changes` of those customers change plan at once (a migration's burst: each change
   fires its billing webhooks, which the ingest routes to the bulk queue past the burst threshold).
   Share of R and 429s from the first call to the last role write of the backlog; where the burst went
   (messages waiting per queue once it was queued, and the most seen waiting during the drain).

A sign-up's latency is from asking the sandbox for the user to the sandbox's timestamp of its last
role write. Calls and 429s come from the sandbox's own call log.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import redis
import redis.asyncio

from bench import pipe_idle
from bench.ingest import redis_server as scratch_redis
from bench.worker import busiest, pipe_options
from common import keys
from common.customers.links import RedisLinkStore
from common.messages import BULK_QUEUE, CONVERGE_QUEUE, EVENT_QUEUES, EVENTS_QUEUE, REBUILD_QUEUE
from common.settings import Settings
from ingest.enqueue import RedisEventQueue
from launch.pipe import running_pipe
from launch.processes import Child, wait_until
from launch.processes import rolesync_argv as rolesync
from launch.redis_server import RunningRedis
from sandbox.client import SandboxClient

SIGNUP_PLAN, SIGNUP_ROLE = "plan_subscriber", "role_subscriber"
SEEDED_PLAN, SEEDED_ROLE = SIGNUP_PLAN, SIGNUP_ROLE  # what every seeded customer pays for before the burst
BACKLOG_PLAN, BACKLOG_ROLE = "plan_client", "role_client"
QUEUES = (EVENTS_QUEUE, BULK_QUEUE, CONVERGE_QUEUE, REBUILD_QUEUE)
LISTINGS = ("/api/v1/users", "/api/v1/organizations")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench backlog")
    parser.add_argument("--customers", type=int, default=10_000, help="customers seeded and reconciled")
    parser.add_argument("--changes", type=int, default=5_000, help="plan changes requested at once")
    parser.add_argument("--rate", type=float, default=50.0, help="the sandbox's rate limit R (requests/s)")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--headroom", type=float, default=0.95, help="KINDE_API_RPS = headroom x R")
    parser.add_argument("--signup-every", type=float, default=2.0, help="seconds between sign-ups")
    parser.add_argument("--no-entitlements", action="store_true", help="[entitlements] enabled = false")
    parser.add_argument("--kinde-429-share", type=float, default=0.0,
                        help="share of Kinde calls the sandbox answers 429 at random (another client's)")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--via-webhooks", action="store_true",
                        help="the burst's webhooks through the sandbox and the ingest's HTTP endpoint")  # fmt: skip
    return parser.parse_args(argv)


class SignUps:
    """One new customer every `every` s in a thread of its own: a user, then its first plan."""

    def __init__(self, base_url: str, every: float) -> None:
        self._kinde = SandboxClient(base_url)
        self._every = every
        self._stop = threading.Event()
        self.started: dict[str, float] = {}  # user id -> when the sign-up was asked
        self.customers: dict[str, str] = {}  # user id -> its customer id
        self._thread = threading.Thread(target=self._run, name="sign-ups", daemon=True)

    def _run(self) -> None:
        n = 0
        while not self._stop.wait(0 if n == 0 else self._every):
            asked = time.time()
            user = self._kinde.create_user(email=f"signup{asked:.3f}-{n}@example.test")
            self._kinde.change_plan(user["customer_id"], SIGNUP_PLAN)
            self.started[user["id"]] = asked
            self.customers[user["id"]] = user["customer_id"]
            n += 1

    @contextmanager
    def running(self) -> Iterator[SignUps]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()
            self._kinde.close()


def arrivals(calls: list[dict[str, Any]], started: dict[str, float]) -> dict[str, float]:
    """Per sign-up: seconds from the ask to its last role write (sign-ups with no write left out)."""
    writes: dict[str, float] = {}
    for call in calls:
        if call["method"] in ("POST", "DELETE") and call["status"] == 200 and "/users/" in call["path"]:
            user = call["path"].split("/users/")[1].split("/")[0]
            if user in started:
                writes[user] = max(writes.get(user, 0.0), call["time"])
    return {user: writes[user] - asked for user, asked in started.items() if user in writes}


def p99(ordered: list[float]) -> float:
    """Nearest rank: a value that was measured, never one extrapolated past the largest."""
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


def holding(kinde: SandboxClient, users: set[str], role: str) -> int:
    return sum(1 for row in kinde.assignments() if row["user_id"] in users and role in row["roles"])


def changed(kinde: SandboxClient, users: set[str]) -> bool:
    """Every one of `users` holds the backlog plan's role and no longer the seeded plan's."""
    rows = [row for row in kinde.assignments() if row["user_id"] in users]
    return sum(BACKLOG_ROLE in row["roles"] and SEEDED_ROLE not in row["roles"] for row in rows) == len(users)


def idle(r: redis.Redis) -> bool:
    return pipe_idle.idle(r, QUEUES)


def signed_up(kinde: SandboxClient, signups: SignUps, timeout: float) -> None:
    users = set(signups.started)
    wait_until(lambda: holding(kinde, users, SIGNUP_ROLE) == len(users), timeout=timeout, interval=1.0, what="sign-ups")


def rate_figures(calls: list[dict[str, Any]], start: float, end: float, rate: float) -> dict[str, Any]:
    window = [c for c in calls if start <= c["time"] <= end]
    span = max(end - start, 1e-9)
    ours = [c for c in window if c["status"] == 429 and "fault" not in c]
    return {
        "seconds": round(span, 1), "kinde_calls": len(window),
        "share_of_R": round(len(window) / span / rate, 3),
        "share_of_R_ok_only": round(sum(1 for c in window if c["status"] != 429) / span / rate, 3),
        "share_of_R_busiest_30s": round(busiest(window, 30.0) / 30.0 / rate, 3),
        "429s": sum(1 for c in window if c["status"] == 429),
        "429s_ours": len(ours), "share_429_ours": round(len(ours) / max(1, len(window)), 4),
        "429s_injected": sum(1 for c in window if c["status"] == 429 and "fault" in c),
        "share_of_R_per_minute": per_minute(window, start, end, rate),
        "each_429": [[round(c["time"] - start, 1), f"{c['method']} {c['path']}", c.get("fault", "ours")]
                     for c in window if c["status"] == 429],
    }  # fmt: skip


def per_minute(window: list[dict[str, Any]], start: float, end: float, rate: float) -> list[float]:
    """Share of R in each minute from `start` (the last one over the part of it that ran)."""
    counts = [0] * max(1, math.ceil((end - start) / 60))
    for call in window:
        counts[min(len(counts) - 1, int((call["time"] - start) // 60))] += 1
    spans = [min(60.0, end - start - 60 * i) for i in range(len(counts))]
    return [round(n / max(span, 1e-9) / rate, 3) for n, span in zip(counts, spans, strict=True)]


def received(r: redis.Redis, deliveries: list[dict[str, Any]], signups: SignUps) -> dict[str, float]:
    """Per sign-up: when the ingest took the last of its billing webhooks (the sandbox's 200), read
    through the event ids the worker noted in the customer's history."""
    taken = {d["event_id"]: d["time"] for d in deliveries if d["status"] == 200}
    found: dict[str, float] = {}
    for user, customer in signups.customers.items():
        events = [json.loads(raw).get("event_id") for raw in r.lrange(keys.customer_history(customer), 0, -1)]
        times = [taken[e] for e in events if e in taken]
        if times:
            found[user] = max(times)
    return found


def signup_figures(
    calls: list[dict[str, Any]], signups: SignUps, r: redis.Redis, deliveries: list[dict[str, Any]]
) -> dict[str, Any]:
    done = arrivals(calls, signups.started)
    lat = sorted(done.values())
    took = received(r, deliveries, signups)
    ours = sorted(done[u] + signups.started[u] - took[u] for u in done if u in took)
    first = min(signups.started.values(), default=0.0)
    return {
        "from_webhook_p50_s": round(statistics.median(ours), 2) if ours else None,
        "from_webhook_p99_s": round(p99(ours), 2) if ours else None,
        "sign_ups": len(signups.started), "with_roles": len(lat),
        "p50_s": round(statistics.median(lat), 2) if lat else None, "p99_s": round(p99(lat), 2) if lat else None,
        "max_s": round(lat[-1], 2) if lat else None,
        "slowest": [  # [asked (s into the phase), ask → roles, last webhook → roles]
            [round(signups.started[u] - first, 1), round(done[u], 1), round(done[u] + signups.started[u] - took[u], 1)]
            for u in sorted(done, key=done.__getitem__)[-5:] if u in took
        ],
    }  # fmt: skip


def reconcile(
    args: argparse.Namespace, kinde: SandboxClient, r: redis.Redis, env: dict[str, str], tmp: Path
) -> dict[str, Any]:
    signups = SignUps(kinde.base_url, args.signup_every)
    with signups.running():
        began = time.time()
        sweep = Child(
            "reconcile",
            rolesync("reconcile", "--json", "--timeout", f"{int(args.timeout)}s", "--reason", "bench: backlog"),
            env,
            tmp,
        )
        sweep.popen.wait(timeout=args.timeout + 60)
        ended = time.time()
    signed_up(kinde, signups, 120)
    calls = kinde.calls()
    discovered = float(r.get(keys.REBUILD_FINISHED) or began)  # the index rebuild's start
    listing = [c["time"] for c in calls if c["time"] >= began and c["path"] in LISTINGS]
    swept_from = max(listing, default=discovered)  # the rebuild's last listing call: the passes begin
    last = max((c["time"] for c in calls if c["time"] <= ended), default=ended)
    summary = json.loads(sweep.output().strip().splitlines()[-1])
    return {
        "exit_code": sweep.popen.returncode,
        "summary": {k: summary.get(k) for k in ("discovered", "checked", "fixed", "failed", "pending")},
        "discovery_s": round(swept_from - began, 1),
        "sweep": rate_figures(calls, swept_from, last, args.rate),
        "sign_ups": signup_figures(calls, signups, r, kinde.deliveries()),
    }  # fmt: skip


async def ingested(url: str, customers: list[str]) -> None:
    """One `customer.plan_changed` per customer through the ingest's own enqueue script (the routing
    and dedupe its HTTP endpoint runs once a webhook is verified), all at once."""
    client = redis.asyncio.Redis.from_url(url)
    queue = RedisEventQueue(client, dedupe_ttl_s=3600, burst_events=Settings().bulk_burst_events)
    try:
        now = time.time()
        await asyncio.gather(*(queue.enqueue_once(_plan_changed(c, now), None, now) for c in customers))
    finally:
        await queue.aclose()
        await client.aclose()


def _plan_changed(customer_id: str, now: float) -> dict[str, Any]:
    return {"type": "customer.plan_changed", "event_id": f"event_{uuid.uuid4().hex}", "timestamp": int(now),
            "data": {"customer_id": customer_id}}  # fmt: skip


def backlog(args: argparse.Namespace, kinde: SandboxClient, r: redis.Redis, url: str) -> dict[str, Any]:
    links = RedisLinkStore(r)
    chosen = sorted(links.all_customer_ids())[: args.changes]
    users = {c: str(getattr(links.get(c), "user_id", "")) for c in chosen}
    signups = SignUps(kinde.base_url, args.signup_every)
    asked = time.time()
    if args.via_webhooks:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda c: kinde.change_plan(c, BACKLOG_PLAN), chosen))
    else:
        kinde.set_webhooks(lose_rate=1.0)  # the burst's own webhooks: put on the queue below instead
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda c: kinde.change_plan(c, BACKLOG_PLAN), chosen))
        kinde.set_webhooks(lose_rate=0.0)
        asyncio.run(ingested(url, chosen))
    asked_s = time.time() - asked
    depth = Depths(r)
    depth.sample()
    at_burst_end = dict(depth.most)  # the burst's routing, before the workers took more than a few
    with signups.running():
        wanted = set(users.values())
        wait_until(lambda: depth.sample() and changed(kinde, wanted), timeout=args.timeout, interval=2.0,
                   what="the backlog's roles")  # fmt: skip
    signed_up(kinde, signups, 120)
    calls = kinde.calls()
    writes = ("POST", "DELETE")
    drained = max(c["time"] for c in calls if c["status"] == 200 and c["method"] in writes and _user(c) in wanted)
    start = min(c["time"] for c in calls if c["time"] >= asked)
    deliveries = kinde.deliveries()
    delivered = max(d["time"] for d in deliveries if d["status"] == 200 and d["time"] >= asked)
    return {
        "plan_changes": len(chosen), "requested_in_s": round(asked_s, 1),
        "burst_webhooks_delivered_in_s": round(delivered - asked, 1) if args.via_webhooks else None,
        "waiting_when_queued": at_burst_end if not args.via_webhooks else None,
        "max_waiting_messages": depth.most, **rate_figures(calls, start, drained, args.rate),
        "sign_ups": signup_figures(calls, signups, r, kinde.deliveries()),
    }  # fmt: skip


def _user(call: dict[str, Any]) -> str:
    return call["path"].split("/users/")[1].split("/")[0] if "/users/" in call["path"] else ""


class Depths:
    """The most messages seen waiting (ready or delayed) per queue: where the ingest routed the burst."""

    def __init__(self, r: redis.Redis) -> None:
        self._redis = r
        self.most: dict[str, int] = dict.fromkeys(EVENT_QUEUES, 0)

    def sample(self) -> bool:
        for queue in self.most:
            waiting = self._redis.hlen(keys.queue_messages(queue)) + self._redis.hlen(keys.delay_queue_messages(queue))
            self.most[queue] = max(self.most[queue], int(waiting))
        return True


def warm_up(kinde: SandboxClient, n: int = 8) -> None:
    """Sign-ups before the measured phases (not counted): the worker processes boot and build their
    dependencies on their first messages, which would otherwise land on the first measured sign-ups."""
    users = [kinde.create_user(email=f"warm-up-{i}@example.test") for i in range(n)]
    for user in users:
        kinde.change_plan(user["customer_id"], SIGNUP_PLAN)
    wanted = {u["id"] for u in users}
    wait_until(lambda: holding(kinde, wanted, SIGNUP_ROLE) == n, timeout=180, interval=1.0, what="warm-up")


def main(argv: list[str]) -> int:
    args = parse(argv)
    with ExitStack() as exits:
        tmp = Path(exits.enter_context(TemporaryDirectory(prefix="bench-backlog-")))
        url, _ = exits.enter_context(scratch_redis())
        pipe = exits.enter_context(running_pipe(tmp / "logs", pipe_options(args), redis_server=RunningRedis(url)))
        kinde, env = pipe.kinde, pipe.env
        kinde.set_webhooks(shuffle=False)
        kinde.set_faults("/api/v1/*", latency_ms=args.latency_ms, error_429=args.kinde_429_share, reset_s=1)
        seeded_at = time.time()
        kinde.seed_bulk(users=args.customers, plan=SEEDED_PLAN, roles=[SEEDED_ROLE])
        seed_s = time.time() - seeded_at
        kinde.set_rate_limit(args.rate, burst=max(2, int(args.rate / 5)))
        r = redis.Redis.from_url(url, decode_responses=True)
        warm_up(kinde)
        result: dict[str, Any] = {"rate_R": args.rate, "kinde_api_rps": args.rate * args.headroom,
                                  "random_429_share": args.kinde_429_share}  # fmt: skip
        result["reconcile"] = reconcile(args, kinde, r, env, tmp)
        wait_until(lambda: idle(r), timeout=600, interval=1.0, what="queues drained after the reconcile")
        result["backlog"] = backlog(args, kinde, r, url)
    result["seed_seconds"] = round(seed_s, 1)
    result["workers"] = f"{args.processes} processes x {args.threads} threads"
    result["machine"] = f"{os.cpu_count()} cpu, {platform.python_implementation()} {platform.python_version()}"
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
