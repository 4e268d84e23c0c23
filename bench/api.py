"""`python -m bench api` (make bench-api): the read API at a fixed rate from Redis, latency from the client.

Seeds `--users` users' target snapshots (two features, one usage reading each) straight into Redis
(an embedded Valkey unless REDIS_URL is set), starts `rolesync api` as its own process, then sends
`--rate` requests/s open loop for `--seconds` over keep-alive connections from `--load-processes` load
processes (each a share of the rate and connections): 80 % a user's entitlements, 10 % one feature, 10 % a
customer, random users. Latency is counted from each request's scheduled time (no coordinated omission);
the rate achieved, each load process's CPU share (near 100 %: the generator, not the API, set the pace)
and the API's own CPU per request are printed. `--workers N` runs `rolesync api --workers N` (2 by
default, as docs/deploy.md sizes 2,000 reads/s; `--workers 1` for one process). Target (issue 28): p99
<= 5 ms at 2,000 req/s (the default `--rate`).
`--only generator`: the generator alone against a server that costs nothing (bench/fixed_answer.py).
Then the plan-selection decision (bench/guard.py): p99 <= 50 ms at 200 req/s with Kinde 2 s late.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from bench import fixed_answer, guard
from bench.http_load import Plan, run_requests
from bench.process_cpu import cpu_by_process, used_since
from common.customers.links import CustomerLink, RedisLinkStore
from common.entitlements.customer import Feature, PlanHeld
from common.entitlements.grants import Grants, RedisGrantStore, Target
from common.entitlements.snapshots import RedisSnapshotStore, Source, TargetSnapshot
from common.guard.usage import Reading, RedisUsageStore
from common.infra.connections import redis_client
from common.infra.embedded_redis import EmbeddedRedis
from common.settings import Secret, Settings
from launch.processes import Child, free_port, http_ok, rolesync_argv, wait_until

KEY = "bench-Ny4pW8cH2vJr6Qk9Ts3Xm7Db"


def seed(url: str, users: int) -> None:
    client = redis_client(Settings(redis_url=Secret(url)))
    snapshots, usage = RedisSnapshotStore(client), RedisUsageStore(client)
    links, grants = RedisLinkStore(client), RedisGrantStore(client)
    features = (Feature("seats", "Seats", 5), Feature("api_calls", "API calls", None))
    for n in range(users):
        user, customer, target = f"kp_{n}", f"customer_{n}", Target("org_default", f"kp_{n}")
        links.put(CustomerLink(customer, "user", user, "org_default", "bench", time.time()))
        grants.put(Grants(customer, ("plan_client",), frozenset({"role_client"}), (target,), 1, time.time()))
        source = Source(customer, (PlanHeld("plan_client", "2026-01-01T00:00:00Z"),), features, ("role_client",),
                        "ok", False, 1, time.time(), time.time())  # fmt: skip
        snapshots.put(TargetSnapshot(target, ("role_client",), (source,), time.time()))
        usage.record(customer, Reading("seats", 3.0, "absolute", time.time(), f"event_{n}", "{}"))
    client.close()


def requests(port: int, users: int, count: int) -> list[bytes]:
    rng, made = random.Random(7), []
    for _ in range(count):
        n, roll = rng.randrange(users), rng.random()
        path = (f"/v1/users/kp_{n}/entitlements" if roll < 0.8 else
                f"/v1/users/kp_{n}/entitlements/seats" if roll < 0.9 else f"/v1/customers/customer_{n}")  # fmt: skip
        made.append(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {KEY}\r\n\r\n".encode())
    return made


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench api")
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=16, help="in all, shared by the load processes")
    parser.add_argument("--workers", type=int, default=2,
                        help="API processes (rolesync api --workers), as docs/deploy.md sizes 2,000/s")  # fmt: skip
    parser.add_argument("--load-processes", type=int, default=1, help="load generator processes")
    parser.add_argument("--guard-rate", type=float, default=200.0, help="plan-selection requests/s")
    parser.add_argument("--guard-seconds", type=float, default=30.0)
    parser.add_argument("--guard-orgs", type=int, default=200, help="orgs (1-5 members each) in the sandbox")
    parser.add_argument("--kinde-latency-ms", type=float, default=2000.0, help="added to every Kinde call")
    parser.add_argument("--only", choices=["read", "guard", "generator"], default=None,
                        help="one of the two phases, or the load generator alone (bench/fixed_answer.py)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.only == "generator":
        return generator_phase(args)
    read_ok = args.only == "guard" or read_phase(args)
    guard_ok = args.only == "read" or guard_phase(args)  # run even when the read phase missed its target
    return 0 if read_ok and guard_ok else 1


def generator_phase(args: argparse.Namespace) -> int:
    result = fixed_answer.run(args.rate, args.seconds, args.connections, args.load_processes)
    busy = " / ".join(f"{b:.0%}" for b in result.busy)
    print(f"load generator alone: {result.rps():.0f} req/s achieved of {args.rate:.0f} asked, load process(es) busy "
          f"{busy} of a core; against a server that costs nothing: p50 {result.percentile_ms(0.5):.2f} ms, "
          f"p99 {result.percentile_ms(0.99):.2f} ms")  # fmt: skip
    return 0 if result.rps() >= 0.98 * args.rate else 1


def guard_phase(args: argparse.Namespace) -> bool:
    with ExitStack() as stack:
        url = os.environ.get("REDIS_URL", "").strip() or stack.enter_context(EmbeddedRedis(port=free_port())).url
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        return guard.run(url, stack, tmp, rate=args.guard_rate, seconds=args.guard_seconds, orgs_n=args.guard_orgs,
                         latency_ms=args.kinde_latency_ms, connections=args.connections)  # fmt: skip


def read_phase(args: argparse.Namespace) -> bool:
    with ExitStack() as stack:
        url = os.environ.get("REDIS_URL", "").strip() or stack.enter_context(EmbeddedRedis(port=free_port())).url
        seed(url, args.users)
        port, logs = free_port(), Path(stack.enter_context(tempfile.TemporaryDirectory()))
        env = {"REDIS_URL": url, "ROLESYNC_API_KEYS": f"bench:{KEY}", "ROLESYNC_LOG_LEVEL": "warning"}
        argv = rolesync_argv(
            "api", "--port", str(port), *(["--workers", str(args.workers)] if args.workers > 1 else [])
        )
        child = Child("api", argv, env, logs)
        stack.callback(child.stop)
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/readyz"), timeout=60, what="the API to be ready")
        procs, connections = args.load_processes, max(1, args.connections // args.load_processes)
        warm = Plan(port, 3.0, connections, rate=args.rate / 2 / procs)
        run_requests(warm, requests(port, args.users, int(args.rate * 2)), processes=procs)
        plan = Plan(port, args.seconds, connections, rate=args.rate / procs)
        before = cpu_by_process(child.popen.pid)
        result = run_requests(plan, requests(port, args.users, int(args.rate * args.seconds)), processes=procs)
        used = used_since(before, cpu_by_process(child.popen.pid))
    statuses = sorted({answer[:3] for answer in result.answers})
    busy = " / ".join(f"{b:.0%}" for b in result.busy)
    print(f"read API ({args.workers} worker(s)): {len(result.latencies_s)} requests in {result.elapsed_s:.1f} s, "
          f"{result.rps():.0f} req/s achieved of {args.rate:.0f} asked, {connections * procs} connections from "
          f"{procs} load process(es) busy {busy} of a core, statuses {statuses}")  # fmt: skip
    per_request = sum(used.values()) / max(1, len(result.latencies_s))
    each = " / ".join(f"{seconds:.1f}" for seconds in used.values())
    print(f"API CPU: {sum(used.values()):.1f} s ({each} s by process, parent first), {per_request * 1e6:.0f} us "
          f"per request (~{1 / per_request if per_request else 0:.0f} req/s per core)")  # fmt: skip
    print(f"latency from schedule: p50 {result.percentile_ms(0.5):.2f} ms, p99 {result.percentile_ms(0.99):.2f} ms, "
          f"p99.9 {result.percentile_ms(0.999):.2f} ms, max {max(result.latencies_s) * 1000:.1f} ms")  # fmt: skip
    return statuses == ["200"] and result.percentile_ms(0.99) <= 5.0
