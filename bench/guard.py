"""The plan-selection decision in `make bench-api`: 200 req/s while Kinde answers every call 2 s late.

Real parts: `rolesync sandbox` (its fault injection adds `--kinde-latency-ms` to every /api/v1 call),
`rolesync worker` (whose `refresh_org_members` actor reads member listings from it) and `rolesync api`.
`--orgs` orgs with 1-5 members each are made in the sandbox; their org links and grant records are
seeded into Redis, and their member counts too, dated across the last `member_refresh_s` so counts keep
going stale during the run: each stale count is answered at once and refreshed through the slow Kinde
in the background, which is the path the bound protects. Latency is counted from each request's
scheduled time (open loop). Target: p99 <= 50 ms. Then a cold phase: orgs never counted, one request
each, to show a miss is answered within `member_wait_s` (by `on_error`) while Kinde takes 2 s.
"""

from __future__ import annotations

import json
import random
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.http_load import LoadResult, Plan, run_requests
from common.customers.links import CustomerLink, RedisLinkStore
from common.entitlements.grants import Grants, RedisGrantStore
from common.guard.members import RedisMemberCache
from common.infra.connections import redis_client
from common.settings import Secret, Settings
from launch.processes import Child, free_port, http_ok, rolesync_argv, wait_until
from sandbox.client import SandboxClient

SECRET = "bench-Rv8kT3nW6qYz1Hm5Px9Lc2Gs"  # noqa: S105 - a throwaway for the local bench
REFRESH_S = 30.0
PLANS = f"""[plans]
plan_client = ["role_client"]
free = []
[limits.free]
org_members = 3
[guard]
member_refresh_s = {REFRESH_S}
member_wait_s = 1.0
"""


@dataclass(frozen=True)
class Org:
    code: str
    customer_id: str
    members: tuple[str, ...]


def make_orgs(kinde: SandboxClient, count: int, rng: random.Random) -> list[Org]:
    made = []
    for n in range(count):
        org = kinde.create_org(name=f"bench-guard-{n}", send_webhook=False)
        users = [kinde.create_user(org_code=org["code"], with_customer=False, send_webhook=False)["id"]
                 for _ in range(rng.randint(1, 5))]  # fmt: skip
        made.append(Org(org["code"], org["customer_id"], tuple(users)))
    return made


def seed(url: str, orgs: list[Org], counted: int, rng: random.Random) -> None:
    client = redis_client(Settings(redis_url=Secret(url)))
    links, grants, cache, now = RedisLinkStore(client), RedisGrantStore(client), RedisMemberCache(client), time.time()
    for n, org in enumerate(orgs):
        links.put(CustomerLink(org.customer_id, "org", None, org.code, "bench", now))
        grants.put(Grants(org.customer_id, ("plan_client",), frozenset({"role_client"}), (), 1, now))
        if n < counted:
            cache.replace(org.code, org.members, now - rng.uniform(0, REFRESH_S))
    client.close()


def request(port: int, org: Org) -> bytes:
    body = json.dumps({"billing": {"currentPlanCode": "plan_client", "requestedPlanCode": "free"},
                       "user": {"id": org.members[0]}, "organization": {"code": org.code}}).encode()  # fmt: skip
    head = (f"POST /v1/plan-selection HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"x-rolesync-workflow-secret: {SECRET}\r\nContent-Length: {len(body)}\r\n\r\n")  # fmt: skip
    return head.encode() + body


def cold(port: int, orgs: list[Org]) -> list[tuple[float, dict[str, Any]]]:
    """One request per never-counted org, one at a time: (seconds, answer)."""
    found = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10.0) as client:
        for org in orgs:
            started = time.perf_counter()
            answer = client.post("/v1/plan-selection", content=request(port, org).split(b"\r\n\r\n", 1)[1],
                                 headers={"x-rolesync-workflow-secret": SECRET})  # fmt: skip
            found.append((time.perf_counter() - started, answer.json()))
    return found


def listings(kinde: SandboxClient, since: float) -> list[dict[str, Any]]:
    return [c for c in kinde.calls() if c["path"].endswith("/users") and "/organizations/" in c["path"]
            and c["time"] >= since]  # fmt: skip


def run(url: str, stack: ExitStack, tmp: Path, *, rate: float, seconds: float, orgs_n: int, latency_ms: float,
        connections: int) -> bool:  # fmt: skip
    rng, sandbox_port, api_port = random.Random(11), free_port(), free_port()
    (tmp / "plans.toml").write_text(PLANS)
    sandbox = Child("sandbox", rolesync_argv("sandbox", "--no-banner", "--port", str(sandbox_port)), {}, tmp)
    stack.callback(sandbox.stop)
    wait_until(lambda: http_ok(f"http://127.0.0.1:{sandbox_port}/_sandbox/health"), timeout=30, what="sandbox")
    kinde = stack.enter_context(SandboxClient(f"http://127.0.0.1:{sandbox_port}"))
    orgs = make_orgs(kinde, orgs_n + 20, rng)
    seed(url, orgs, orgs_n, rng)
    kinde.set_faults("/api/v1/*", latency_ms=latency_ms)
    env = {"REDIS_URL": url, "KINDE_DOMAIN": f"http://127.0.0.1:{sandbox_port}", "KINDE_CLIENT_ID": "sandbox-client",
           "ROLESYNC_INSECURE_LOCAL": "1",  # the sandbox over http on loopback
           "KINDE_CLIENT_SECRET": "sandbox-secret", "ROLESYNC_PLANS": str(tmp / "plans.toml"), "KINDE_API_RPS": "100",
           "ROLESYNC_LOG_LEVEL": "warning", "ROLESYNC_API_KEYS": "bench:bench-Ny4pW8cH2vJr6Qk9Ts3Xm7Db",
           "ROLESYNC_WORKFLOW_SECRET": SECRET}  # fmt: skip
    for child in (Child("worker", rolesync_argv("worker", "--threads", "16"), env, tmp),
                  Child("api", rolesync_argv("api", "--port", str(api_port)), env, tmp)):  # fmt: skip
        stack.callback(child.stop)
    wait_until(lambda: http_ok(f"http://127.0.0.1:{api_port}/readyz"), what="the API to be ready")
    counted = orgs[:orgs_n]
    run_requests(Plan(api_port, 3.0, connections, rate=rate), [request(api_port, rng.choice(counted))
                                                               for _ in range(int(rate * 3))], processes=1)  # fmt: skip
    started = time.time()
    load = [request(api_port, rng.choice(counted)) for _ in range(int(rate * seconds))]
    result = run_requests(Plan(api_port, seconds, connections, rate=rate), load, processes=1)
    refreshed = listings(kinde, started)
    outcomes, within = decisions(api_port)
    misses = cold(api_port, orgs[orgs_n:])
    print("decisions in the run by outcome: " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(outcomes.items())))
    print(f"server-side (the API's own histogram, warm-up included): {within:.2%} answered within 50 ms")
    return report(result, rate, latency_ms, refreshed, misses)


def decisions(port: int) -> tuple[dict[str, float], float]:
    """Decisions by outcome, and the share the API itself answered within 50 ms."""
    lines = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10.0).text.splitlines()
    rows = (line.split(" ") for line in lines if line.startswith("rolesync_guard_decisions_total{"))
    seconds = 'rolesync_api_request_seconds_bucket{le="%s",route="plan_selection"}'
    bucket = {
        le: float(line.split(" ")[1]) for le in ("0.05", "+Inf") for line in lines if line.startswith(seconds % le)
    }
    return {row[0].split('"')[1]: float(row[1]) for row in rows}, bucket.get("0.05", 0.0) / max(
        bucket.get("+Inf", 1.0), 1.0
    )


def report(result: LoadResult, rate: float, latency_ms: float, refreshed: list[dict[str, Any]],
           misses: list[tuple[float, dict[str, Any]]]) -> bool:  # fmt: skip
    statuses = sorted({answer[:3] for answer in result.answers})
    p99 = result.percentile_ms(0.99)
    print(f"plan-selection: {len(result.latencies_s)} requests in {result.elapsed_s:.1f} s ({result.rps():.0f} req/s "
          f"asked {rate:.0f}), Kinde {latency_ms:.0f} ms late, statuses {statuses}")  # fmt: skip
    print(f"latency from schedule: p50 {result.percentile_ms(0.5):.2f} ms, p99 {p99:.2f} ms, "
          f"p99.9 {result.percentile_ms(0.999):.2f} ms, max {max(result.latencies_s) * 1000:.1f} ms")  # fmt: skip
    print(f"member listings read from Kinde in the background during the run: {len(refreshed)}")
    waits = sorted(s for s, _ in misses)
    fell_back = sum(1 for _, answer in misses if answer.get("allow") is True)
    print(f"cold orgs (never counted), {len(misses)} one at a time: p50 {waits[len(waits) // 2] * 1000:.0f} ms, "
          f"max {waits[-1] * 1000:.0f} ms, answered by on_error=allow: {fell_back}")  # fmt: skip
    return statuses == ["200"] and p99 <= 50.0
