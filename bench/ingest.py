"""`python -m bench ingest`: echo vs verify-only vs the real ingest, each under uvicorn in its own process, and
the Express + @kinde/webhooks peer (bench/load_peer.py) in the same run when node and npm are on PATH.

Every app gets the same pre-signed tokens (unique event ids, so the real ingest really enqueues)
from a load generator in separate processes (bench/http_load.py). Redis is an embedded Valkey
unless REDIS_URL is set; the run writes to that server's `rolesync-events` queue, so point
REDIS_URL at a scratch database, never at a live one.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx

from bench.http_load import LoadResult, Plan, run_load
from bench.ingest_tokens import jwks_of, new_private_pem, sign_tokens
from bench.load_peer import express_peer, node_version
from bench.machine import machine
from common.infra.embedded_redis import EmbeddedRedis
from launch.processes import free_port, wait_until

APPS = {"a": "echo_app", "b": "verify_app", "c": "ingest_app"}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench ingest")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per closed-loop run")
    parser.add_argument("--rate", type=float, default=500.0, help="fixed rate for the latency run (req/s)")
    parser.add_argument("--rate-duration", type=float, default=5.0, help="seconds of the fixed-rate run")
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections per load process")
    parser.add_argument("--load-processes", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=12000, help="pre-signed tokens per closed-loop run")
    parser.add_argument("--loop", choices=["auto", "asyncio", "uvloop"], default="auto", help="uvicorn --loop")
    parser.add_argument("--http", choices=["auto", "h11", "httptools"], default="auto", help="uvicorn --http")
    parser.add_argument("--no-peer", action="store_true", help="skip (d), the Express + @kinde/webhooks peer")
    return parser.parse_args(argv)


def server_args(opts: argparse.Namespace) -> list[str]:
    """uvicorn's event loop and HTTP parser, resolved as uvicorn's `auto` does, so a report names what ran."""
    loop = opts.loop if opts.loop != "auto" else ("uvloop" if _importable("uvloop") else "asyncio")
    http = opts.http if opts.http != "auto" else ("httptools" if _importable("httptools") else "h11")
    return ["--loop", loop, "--http", http]


def _importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@contextmanager
def redis_server() -> Iterator[tuple[str, int | None]]:
    """The Redis URL and, for the embedded server, its pid (so its CPU time can be counted)."""
    given = os.environ.get("REDIS_URL", "").strip()
    if given:
        yield given, None
        return
    with EmbeddedRedis(port=free_port()) as server:
        yield server.url, server.pid


def cpu_seconds(pid: int | None) -> float:
    """User+system CPU time of a process from /proc (Linux); NaN where it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError, TypeError):
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def app_process(factory: str, env: dict[str, str], server: list[str]) -> Iterator[tuple[int, int]]:
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "--factory", f"bench.ingest_apps:{factory}", "--port", str(port)]
    argv += ["--log-level", "warning", "--no-access-log", *server]
    proc = subprocess.Popen(argv, env={**os.environ, **env}, stdout=subprocess.DEVNULL)
    try:
        wait_until(lambda: _up(port) or proc.poll() is not None, timeout=20, what=f"{factory} to start")
        yield port, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def _up(port: int) -> bool:
    try:
        httpx.post(f"http://127.0.0.1:{port}/webhooks/kinde", content=b"warmup", timeout=1)
    except httpx.HTTPError:
        return False
    return True


def measure(
    factory: str, env: dict[str, str], tokens: list[str], opts: argparse.Namespace, redis_pid: int | None
) -> dict[str, Any]:
    warm, closed, fixed = tokens[:300], tokens[300 : 300 + opts.tokens], tokens[300 + opts.tokens :]
    with app_process(factory, env, server_args(opts)) as (port, pid):
        run_load(Plan(port, 0.5, opts.connections), warm, processes=1)
        before = cpu_seconds(pid), cpu_seconds(redis_pid)
        throughput = run_load(Plan(port, opts.duration, opts.connections), closed, processes=opts.load_processes)
        used = cpu_seconds(pid) - before[0], cpu_seconds(redis_pid) - before[1]
        per_process = opts.rate / opts.load_processes
        rate_plan = Plan(port, opts.rate_duration, opts.connections, rate=per_process)
        at_rate = run_load(rate_plan, fixed, processes=opts.load_processes)
    served = max(1, len(throughput.latencies_s))
    # Apps that never touch Redis get 0 Redis CPU, not whatever the idle server burnt meanwhile.
    redis_us = used[1] / served * 1e6 if factory == "ingest_app" else 0.0
    cpu = {"app_us_per_request": round(used[0] / served * 1e6, 1), "redis_us_per_request": round(redis_us, 1)}
    return {"throughput": summary(throughput), "at_rate": summary(at_rate), "cpu": cpu}


def measure_peer(env: dict[str, str], tokens: list[str], opts: argparse.Namespace) -> dict[str, Any]:
    """(d) the Express + @kinde/webhooks peer, closed loop like the others, verifying against a local key
    server (its JWKS fetch per webhook is the package's behaviour: bench/peers/express-kinde/server.js)."""
    if opts.no_peer or node_version() is None:
        return {"skipped": "--no-peer" if opts.no_peer else "node/npm not on PATH"}
    warm, closed = tokens[:300], tokens[300 : 300 + opts.tokens]
    with ExitStack() as stack:
        keys_port, _ = stack.enter_context(app_process("jwks_app", env, server_args(opts)))
        logs = Path(stack.enter_context(TemporaryDirectory(prefix="bench-ingest-peer-")))
        port = stack.enter_context(express_peer(f"http://127.0.0.1:{keys_port}", logs))
        run_load(Plan(port, 0.5, opts.connections), warm, processes=1)
        throughput = run_load(Plan(port, opts.duration, opts.connections), closed, processes=opts.load_processes)
    return {"throughput": summary(throughput)}


def summary(result: LoadResult) -> dict[str, Any]:
    return {
        "requests": len(result.latencies_s),
        "rps": round(result.rps(), 1),
        "p50_ms": round(result.percentile_ms(0.50), 3),
        "p99_ms": round(result.percentile_ms(0.99), 3),
        "answers": dict(result.answers.most_common(3)),
    }


def report(results: dict[str, dict[str, Any]], opts: argparse.Namespace) -> None:
    server = "uvicorn " + " ".join(server_args(opts))
    print(json.dumps({"machine": {**machine(), "server": server}, **results}, indent=2))
    a, b, c = (results[k]["throughput"]["rps"] for k in "abc")
    p99 = results["c"]["at_rate"]["p99_ms"]
    head = f"{'p99@' + format(opts.rate, 'g') + '/s':>14}{'app CPU us':>12}{'redis CPU us':>14}"
    print(f"\n{'app':<22}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{head}")
    for key, name in (("a", "a echo"), ("b", "b verify-only"), ("c", "c ingest+redis")):
        t, r, u = results[key]["throughput"], results[key]["at_rate"], results[key]["cpu"]
        row = f"{t['rps']:>10.0f}{t['p50_ms']:>10.2f}{t['p99_ms']:>10.2f}{r['p99_ms']:>14.2f}"
        print(f"{name:<22}{row}{u['app_us_per_request']:>12.0f}{u['redis_us_per_request']:>14.0f}")
    print(f"\nserver: {server}")
    print(f"c/b = {c / b:.2f} (target >= 0.75: {'met' if c / b >= 0.75 else 'MISSED'})")
    cpu_b, cpu_c = results["b"]["cpu"], results["c"]["cpu"]
    ratio = cpu_b["app_us_per_request"] / (cpu_c["app_us_per_request"] + cpu_c["redis_us_per_request"])
    print(f"CPU per request, b / (c app + c redis) = {ratio:.2f} (what c/b would be if the cores were not shared)")
    print(f"c/a = {c / a:.2f}")
    peer = results["d"].get("throughput")
    if peer is None:
        print(f"c/d (Express peer) not measured: {results['d']['skipped']}")
    else:
        d = peer["rps"]
        print(f"d express + @kinde/webhooks: {d:.0f} req/s (p99 {peer['p99_ms']:.2f} ms); c/d = {c / d:.2f} "
              f"(target >= 4: {'met' if c / d >= 4 else 'MISSED'})")  # fmt: skip
    print(f"c p99 at {opts.rate:g} req/s = {p99:.2f} ms (target <= 10 ms: {'met' if p99 <= 10 else 'MISSED'})")


def main(argv: list[str]) -> int:
    opts = parse(argv)
    pem = new_private_pem()
    started = time.perf_counter()
    per_app = 300 + opts.tokens + int(opts.rate * opts.rate_duration) + 100
    tokens = sign_tokens(pem, per_app)
    print(f"signed {len(tokens)} tokens in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    results: dict[str, dict[str, Any]] = {}
    with redis_server() as (url, redis_pid):
        env = {"BENCH_JWKS": json.dumps(jwks_of(pem)), "REDIS_URL": url}
        for key, factory in APPS.items():
            results[key] = measure(factory, env, tokens, opts, redis_pid)
            print(f"{factory}: {results[key]['throughput']['rps']} req/s", file=sys.stderr)
        results["d"] = measure_peer(env, tokens, opts)
    report(results, opts)
    return 0
