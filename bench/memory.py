"""`python -m bench memory`: Redis bytes and keys per paying customer, by key shape.

Everything real and local, the stack of `bench worker` (an embedded Valkey, `rolesync sandbox`, `rolesync
ingest`, `rolesync worker`): `--customers` users each sign up with a billing customer (its webhook), buy
a plan, then change it, all through the sandbox's signed webhooks. Once every customer holds its last
plan's role and the queues are idle, every key is measured (`MEMORY USAGE key SAMPLES 0`) and grouped
by shape (ids replaced by placeholders: `rolesync:snapshots:{user}`; each shape's figures are
[bytes, keys] per customer). Then again as after the dedupe
keys expire: every key that would expire within the dedupe TTL (`ROLESYNC_DEDUPE_TTL_S`, 72 h) is
deleted, as time would. Keys whose shape holds fewer keys than a tenth of the customers (queues, the
roles catalog, counters) are fleet-wide, not per customer, and are listed apart.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from collections import defaultdict
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import redis

from bench.backlog import idle
from bench.ingest import redis_server as scratch_redis
from bench.worker import pipe_options, roles_are
from common.settings import Settings
from launch.pipe import running_pipe
from launch.processes import wait_until
from launch.redis_server import RunningRedis
from sandbox.client import SandboxClient

PLANS = (("plan_subscriber", "role_subscriber"), ("plan_client", "role_client"))
SHAPES = (
    (re.compile(r"kp_[0-9a-zA-Z]+"), "{user}"),
    (re.compile(r"customer_[0-9a-zA-Z]+"), "{customer}"),
    (re.compile(r"org_[0-9a-zA-Z_]+"), "{org}"),
    (re.compile(r"(event|evt|msg|agreement)_[0-9a-zA-Z]+"), "{id}"),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "{uuid}"),
    (re.compile(r"[0-9a-f]{16,}"), "{hex}"),
    (re.compile(r"\d{4,}"), "{n}"),
)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench memory")
    parser.add_argument("--customers", type=int, default=300, help="paying customers put through the stack")
    parser.add_argument("--rate", type=float, default=200.0, help="the sandbox's rate limit R (requests/s)")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--headroom", type=float, default=0.95, help="KINDE_API_RPS = headroom x R")
    return parser.parse_args(argv)


def shape(key: str) -> str:
    for pattern, placeholder in SHAPES:
        key = pattern.sub(placeholder, key)
    return key


def measure(r: redis.Redis, customers: int) -> dict[str, Any]:
    """Bytes and keys by shape; per customer for the shapes that grow with customers."""
    found: dict[str, dict[str, int]] = defaultdict(lambda: {"keys": 0, "bytes": 0})
    for key in r.scan_iter(count=1000):
        row = found[shape(str(key))]
        row["keys"] += 1
        row["bytes"] += int(r.memory_usage(key, samples=0) or 0)
    per = {s: v for s, v in found.items() if v["keys"] >= customers / 10}
    shared = [v for s, v in found.items() if s not in per]
    ordered = sorted(per.items(), key=lambda item: -item[1]["bytes"])
    return {
        "bytes_per_customer": round(sum(v["bytes"] for v in per.values()) / customers),
        "keys_per_customer": round(sum(v["keys"] for v in per.values()) / customers, 2),
        "by_shape": {s: [round(v["bytes"] / customers), round(v["keys"] / customers, 2)] for s, v in ordered},
        "fleet_wide": {"keys": sum(v["keys"] for v in shared), "bytes": sum(v["bytes"] for v in shared)},
    }


def expire_dedupe(r: redis.Redis, dedupe_ttl_s: int) -> list[str]:
    """Delete every key that would expire within the dedupe TTL; the shapes that went."""
    gone: set[str] = set()
    for key in list(r.scan_iter(count=1000)):
        ttl = int(r.ttl(key))
        if 0 <= ttl <= dedupe_ttl_s:
            gone.add(shape(str(key)))
            r.delete(key)
    return sorted(gone)


def paying(kinde: SandboxClient, n: int) -> list[dict[str, Any]]:
    """`n` customers through sign-up, a first plan and a change, each step's roles awaited."""
    users = [kinde.create_user(email=f"memory{i}@example.com") for i in range(n)]
    for plan, role in PLANS:
        for user in users:
            kinde.change_plan(user["customer_id"], plan)
        for user in users:
            wait_until(partial(roles_are, kinde, user["id"], [role]), timeout=600, interval=0.5, what=f"{role}")
    return users


def main(argv: list[str]) -> int:
    args = parse(argv)
    with ExitStack() as exits:
        tmp = Path(exits.enter_context(TemporaryDirectory(prefix="bench-memory-")))
        url, _ = exits.enter_context(scratch_redis())
        pipe = exits.enter_context(running_pipe(tmp / "logs", pipe_options(args), redis_server=RunningRedis(url)))
        kinde = pipe.kinde
        kinde.set_rate_limit(args.rate, burst=max(2, int(args.rate / 5)))
        if args.latency_ms:
            kinde.set_faults("/api/v1/*", latency_ms=args.latency_ms)
        r = redis.Redis.from_url(url, decode_responses=True)
        began = time.time()
        paying(kinde, args.customers)
        wait_until(lambda: kinde.pending_deliveries() == 0 and idle(r), timeout=300, interval=1.0, what="queues idle")
        result: dict[str, Any] = {"customers": args.customers, "seconds": round(time.time() - began, 1)}
        result["held"] = measure(r, args.customers)
        result["expired_shapes"] = expire_dedupe(r, Settings.from_env(pipe.env).dedupe_ttl_s)
        result["after_dedupe_expiry"] = measure(r, args.customers)
    result["machine"] = f"{os.cpu_count()} cpu, {platform.python_implementation()} {platform.python_version()}"
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
