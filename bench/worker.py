"""`python -m bench worker`: N customers x plan changes through the sandbox, 4 real worker processes.

Everything is real and local: an embedded Valkey (or REDIS_URL, a scratch database!), `rolesync
sandbox` with `--latency-ms` on every Management API call and a token-bucket rate limit of R/s,
`rolesync ingest` receiving the sandbox's signed webhooks, and `rolesync worker --processes 4`.
Phases: sign-up (users created, links learned; not measured), then `--rounds` plan changes for
every customer (measured), then one duplicate of an already-handled event per customer, injected
straight into the queue as a Dramatiq redelivery would be (calls per duplicate).

Latency is "plan change → roles correct": from the moment the benchmark asks the sandbox to change
the plan to the sandbox's timestamp of the last role write for that user, both on this machine's
clock. Kinde calls and 429s are read from the sandbox's own call log.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import redis
from dramatiq.brokers.redis import RedisBroker

from bench import pipe_idle
from bench.ingest import redis_server as scratch_redis  # embedded Valkey unless REDIS_URL (a scratch db)
from common.messages import EVENT_QUEUES, event_message
from launch.pipe import PipeOptions, running_pipe
from launch.processes import wait_until
from launch.redis_server import RunningRedis
from sandbox.client import SandboxClient
from sandbox.config import PLANS_TOML

SEQUENCE = ["plan_client", "plan_subscriber"]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench worker")
    parser.add_argument("--customers", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=2, help="plan changes per customer in the measured phase")
    parser.add_argument("--rate", type=float, default=20.0, help="the sandbox's rate limit R (requests/s)")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--headroom", type=float, default=0.95, help="KINDE_API_RPS = headroom x R")
    parser.add_argument("--no-entitlements", action="store_true",
                        help="[entitlements] enabled = false: no entitlements read per plan change")  # fmt: skip
    return parser.parse_args(argv)


def pipe_options(args: argparse.Namespace) -> PipeOptions:
    """One worker launcher with `--processes` processes, the worker's rate just under the sandbox's R."""
    off = getattr(args, "no_entitlements", False)  # bench/backlog.py has no such option
    plans = PLANS_TOML + ("[entitlements]\nenabled = false\n" if off else "")
    env = {"KINDE_API_RPS": str(args.rate * args.headroom)}
    return PipeOptions(processes=args.processes, threads=args.threads, env=env, plans_toml=plans,
                       time_scale=1, log_level="warning")  # fmt: skip


def roles_are(kinde: SandboxClient, user_id: str, want: list[str]) -> bool:
    return kinde.user_roles(user_id) == want


def sign_up(kinde: SandboxClient, r: redis.Redis, n: int) -> list[dict[str, Any]]:
    users = [kinde.create_user(email=f"bench{i}@example.com") for i in range(n)]
    for user in users:
        kinde.change_plan(user["customer_id"], "plan_subscriber")
    for user in users:
        wait_until(partial(roles_are, kinde, user["id"], ["role_subscriber"]), timeout=300, what="sign-up roles")
    return users


def measured(kinde: SandboxClient, users: list[dict[str, Any]], rounds: int) -> tuple[list[float], float, float]:
    started: dict[str, list[float]] = {u["id"]: [] for u in users}
    t0 = time.time()
    for n in range(rounds):
        plan = SEQUENCE[n % 2]
        for user in users:
            started[user["id"]].append(time.time())
            kinde.change_plan(user["customer_id"], plan)
        for user in users:
            want = [f"role_{plan.removeprefix('plan_')}"]
            wait_until(partial(roles_are, kinde, user["id"], want), timeout=600, interval=0.5, what="roles")
    t1 = time.time()
    return latencies(kinde.calls(), started, t0), t0, t1


def latencies(calls: list[dict[str, Any]], started: dict[str, list[float]], t0: float) -> list[float]:
    writes: dict[str, list[float]] = {}
    for call in calls:
        if call["method"] in ("POST", "DELETE") and call["status"] == 200 and call["time"] >= t0:
            user = call["path"].split("/users/")[1].split("/")[0]
            writes.setdefault(user, []).append(call["time"])
    result = []
    for user, starts in started.items():
        for i, start in enumerate(starts):
            end = starts[i + 1] if i + 1 < len(starts) else float("inf")
            done = [t for t in writes.get(user, []) if start <= t < end]
            if done:
                result.append(max(done) - start)
    return result


def endpoint(call: dict[str, Any]) -> str:
    path = re.sub(r"/(organizations|users|roles)/[^/]+", r"/\1/{\1}", call["path"].removeprefix("/api/v1"))
    return f"{call['method']} {path}"


def duplicates(kinde: SandboxClient, r: redis.Redis, broker: RedisBroker, users: list[dict[str, Any]]) -> int:
    """Handle one fresh event per customer, then inject it again; return Kinde calls the copies made."""
    events = [{"type": "customer.plan_changed", "event_id": f"event_{uuid.uuid4().hex}",
               "data": {"customer_id": u["customer_id"]}} for u in users]  # fmt: skip
    for claims in events:
        broker.enqueue(event_message(claims, None, time.time()))
    idle(r)
    before = len(kinde.calls())
    for claims in events:
        broker.enqueue(event_message(claims, None, time.time()))
    idle(r)
    return len(kinde.calls()) - before


def idle(r: redis.Redis) -> None:
    # A burst of existing customers' events is routed to the bulk queue (ingest/enqueue.py).
    wait_until(lambda: pipe_idle.idle(r, EVENT_QUEUES), timeout=120, interval=0.2, what="queues drained")
    time.sleep(0.5)  # the last messages are acked after they finish; let the in-flight ones end


def busiest(calls: list[dict[str, Any]], width_s: float) -> int:
    """Most calls in any `width_s` window: the sustained rate while there is a backlog to work off."""
    times = sorted(c["time"] for c in calls)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] > width_s:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def report(args: argparse.Namespace, lat: list[float], window: list[dict[str, Any]], span: float, tokens: int,
           dup_calls: int, events: int) -> dict[str, Any]:  # fmt: skip
    changes = args.customers * args.rounds
    by_endpoint = Counter(endpoint(c) for c in window if c["status"] != 429)
    quantiles = statistics.quantiles(lat, n=100) if len(lat) > 1 else [0.0] * 99
    return {
        "plan_changes": changes, "events": events, "seconds": round(span, 2), "events_per_s": round(events / span, 1),
        "latency_p50_s": round(quantiles[49], 3), "latency_p99_s": round(quantiles[98], 3),
        "calls_per_change": {k: round(v / changes, 2) for k, v in sorted(by_endpoint.items())},
        "calls_per_change_total": round(sum(by_endpoint.values()) / changes, 2),
        "entitlements": not args.no_entitlements,
        "token_requests_in_window": tokens, "calls_per_duplicate": round(dup_calls / args.customers, 2),
        "rate_R": args.rate, "share_of_R_used": round(len(window) / span / args.rate, 3),
        "share_of_R_busiest_10s": round(busiest(window, 10.0) / 10.0 / args.rate, 3),
        "share_429": round(sum(1 for c in window if c["status"] == 429) / max(1, len(window)), 4),
    }  # fmt: skip


def main(argv: list[str]) -> int:
    args = parse(argv)
    with ExitStack() as exits:
        tmp = Path(exits.enter_context(TemporaryDirectory(prefix="bench-worker-")))
        url, _ = exits.enter_context(scratch_redis())
        kinde = exits.enter_context(running_pipe(tmp, pipe_options(args), redis_server=RunningRedis(url))).kinde
        kinde.set_webhooks(shuffle=False)
        kinde.set_faults("/api/v1/*", latency_ms=args.latency_ms)
        kinde.set_rate_limit(args.rate, burst=max(2, int(args.rate / 5)))
        r = redis.Redis.from_url(url)
        broker = exits.enter_context(closing_broker(url))
        users = sign_up(kinde, r, args.customers)
        idle(r)
        calls_before, tokens_before = len(kinde.calls()), kinde.token_requests()
        lat, t0, t1 = measured(kinde, users, args.rounds)
        idle(r)
        window = [c for c in kinde.calls()[calls_before:] if c["time"] <= t1]
        events = len({d["event_id"] for d in kinde.deliveries() if t0 <= d["time"] <= t1})
        result = report(
            args,
            lat,
            window,
            t1 - t0,
            kinde.token_requests() - tokens_before,
            duplicates(kinde, r, broker, users),
            events,
        )
    result["machine"] = f"{os.cpu_count()} cpu, {platform.python_implementation()} {platform.python_version()}"
    print(json.dumps(result, indent=2))
    return 0


@contextmanager
def closing_broker(url: str) -> Iterator[RedisBroker]:
    broker = RedisBroker(client=redis.Redis.from_url(url))  # type: ignore[no-untyped-call]
    try:
        yield broker
    finally:
        broker.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
