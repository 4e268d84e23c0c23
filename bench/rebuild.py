"""`python -m bench rebuild`: the customer-index rebuild on a big tenant, with real worker processes.

Everything real and local, as in `bench worker` (launch/pipe.py with bench/worker.py
`pipe_options`): an embedded Valkey, `rolesync sandbox` with a token bucket of `--rate` req/s
answering 429 beyond it, `rolesync ingest`, and `rolesync worker` with KINDE_API_RPS = the same
rate. The sandbox is bulk-seeded (no webhooks) with `--users` users and `--orgs` orgs, each with a
billing customer; the sandbox lists orgs without `billing`, so every org costs one `GET
/organization`. Then two customers nobody told the worker about change plan (billing webhooks naming
only the customer): a B2C user created after the bulk (on the last users page) and an org created
last with one member (its link is the rebuild's very last look-up). Their events park and ask for a
rebuild, which must find both.

Reported, from the sandbox's call log: calls by endpoint during the rebuild, pages read twice, 429s,
the rebuild's duration (its recorded start to its last listing call), and when each customer's role
write landed, measured from the plan change and from the rebuild's end.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any
from urllib.parse import parse_qs

import redis

from bench.ingest import redis_server as scratch_redis
from bench.worker import endpoint, pipe_options
from common import keys
from launch.pipe import running_pipe
from launch.processes import wait_until
from launch.redis_server import RunningRedis
from sandbox.client import SandboxClient
from worker.kinde.api import PAGE_SIZE

LISTINGS = ("GET /users", "GET /organizations", "GET /organization")
MARGIN_S = 2.0


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench rebuild")
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--orgs", type=int, default=2_000)
    parser.add_argument("--rate", type=float, default=10.0, help="KINDE_API_RPS, and the sandbox's limit R (req/s)")
    parser.add_argument("--sandbox-rate", type=float, default=0.0, help="R below KINDE_API_RPS, to force 429s")
    parser.add_argument("--burst", type=int, default=2)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=1800.0)
    args = parser.parse_args(argv)
    args.headroom, args.latency_ms, args.no_entitlements = 1.0, 0.0, False  # what bench/worker.py's pipe_options reads
    return args


def unknown_customers(kinde: SandboxClient) -> dict[str, dict[str, Any]]:
    """A B2C user and a B2B org (with one member) the worker never hears of, created after the bulk."""
    user = kinde.create_user(email="unknown-b2c@example.test", send_webhook=False)
    org = kinde.create_org(name="Unknown B2B", send_webhook=False)
    member = kinde.create_user(org_code=org["code"], with_customer=False, send_webhook=False)
    return {
        "b2c": {"customer_id": user["customer_id"], "user_id": user["id"], "org_code": None},
        "b2b": {"customer_id": org["customer_id"], "user_id": member["id"], "org_code": org["code"]},
    }


def roles_written(kinde: SandboxClient, target: dict[str, Any], timeout: float) -> None:
    want, org = ["role_client"], target["org_code"]
    wait_until(lambda: kinde.user_roles(target["user_id"], org) == want, timeout=timeout, interval=1.0, what="roles")


def rebuild_finished(r: redis.Redis, since: float) -> bool:
    finished = r.get(keys.REBUILD_FINISHED)
    return finished is not None and float(finished) >= since and r.get(keys.REBUILD_CURSOR) is None


def write_time(calls: list[dict[str, Any]], user_id: str) -> float:
    return min(float(c["time"]) for c in calls if c["method"] == "POST" and f"/users/{user_id}/" in c["path"])


def page_reads(calls: list[dict[str, Any]], path: str) -> Counter[str]:
    pages = [c for c in calls if c["path"] == path and c["method"] == "GET" and c["status"] == 200]
    return Counter((parse_qs(c["query"]).get("next_token") or ["first"])[0] for c in pages)


def report(args: argparse.Namespace, calls: list[dict[str, Any]], started: float, asked: float,
           targets: dict[str, dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
    listing = [c for c in calls if endpoint(c) in LISTINGS and c["time"] >= started]
    ended = max(c["time"] for c in listing)
    ok = Counter(endpoint(c) for c in listing if c["status"] == 200)
    users, orgs = args.users + 2, args.orgs + 2  # + the unknown user and member; + the default org and the unknown org
    expected = math.ceil(users / PAGE_SIZE) + math.ceil(orgs / PAGE_SIZE) + orgs
    twice = sum(n - 1 for path in ("/api/v1/users", "/api/v1/organizations") for n in page_reads(calls, path).values())
    arrived = {name: write_time(calls, t["user_id"]) for name, t in targets.items()}
    return {
        "tenant": {"users": users, "orgs": orgs, "orgs_listed_with_billing": 0},
        "rate_R": args.sandbox_rate or args.rate, "kinde_api_rps": args.rate,
        "rebuild_seconds": round(ended - started, 1),
        "rebuild_calls_ok": sum(ok.values()), "rebuild_calls_by_endpoint": dict(sorted(ok.items())),
        "expected_pages_plus_org_lookups": expected, "pages_read_twice": twice,
        "rebuild_429s": sum(1 for c in listing if c["status"] == 429),
        "all_429s": sum(1 for c in calls if c["status"] == 429 and c["time"] >= asked),
        "roles_after_plan_change_s": {k: round(v - asked, 1) for k, v in arrived.items()},
        "roles_after_rebuild_start_s": {k: round(v - started, 1) for k, v in arrived.items()},
        "roles_after_rebuild_end_s": {k: round(v - ended, 2) for k, v in arrived.items()},
        "roles_within_rebuild_plus_2s": all(v - started <= ended - started + MARGIN_S for v in arrived.values()),
    }  # fmt: skip


def main(argv: list[str]) -> int:
    args = parse(argv)
    with ExitStack() as exits:
        tmp = Path(exits.enter_context(TemporaryDirectory(prefix="bench-rebuild-")))
        url, _ = exits.enter_context(scratch_redis())
        kinde = exits.enter_context(running_pipe(tmp, pipe_options(args), redis_server=RunningRedis(url))).kinde
        r = redis.Redis.from_url(url, decode_responses=True)
        seeded_at = time.time()
        kinde.seed_bulk(users=args.users, orgs=args.orgs)
        seed_s = time.time() - seeded_at
        targets = unknown_customers(kinde)
        kinde.set_webhooks(variant="flat", shuffle=False)  # billing events name the customer only
        kinde.set_rate_limit(args.sandbox_rate or args.rate, burst=args.burst)
        asked = time.time()
        for target in targets.values():
            kinde.change_plan(target["customer_id"], "plan_client")
        for target in targets.values():
            roles_written(kinde, target, args.timeout)
        wait_until(lambda: rebuild_finished(r, asked), timeout=args.timeout, interval=1.0, what="rebuild finished")
        started = float(r.get(keys.REBUILD_FINISHED) or 0)
        result = report(args, kinde.calls(), started, asked, targets)
    result["seed_seconds"] = round(seed_s, 1)
    result["machine"] = f"{os.cpu_count()} cpu, {platform.python_implementation()} {platform.python_version()}"
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
