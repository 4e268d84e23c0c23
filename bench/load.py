"""`python -m bench load`: ingest vs the Express peer, then the whole pipe at its highest steady rate.

Prints the figures as JSON and writes them, with the command and the machine, under `## Load` in
docs/benchmarks.md (`--docs` elsewhere, `--docs ''` nowhere). Exits non-zero when it could not run
or the held rate did not drain (users left with wrong roles).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from bench.ingest_vs_peer import compare
from bench.load_peer import node_version
from bench.load_pipe import Step, drive, figures, held, sampling, sign_up
from bench.load_report import DOCS, NOTES, text, write_section
from bench.machine import machine
from launch.pipe import Pipe, PipeOptions, running_pipe
from sandbox.client import SandboxClient


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench load")
    p.add_argument("--ingest-duration", type=float, default=5.0, help="seconds of each closed-loop ingest run")
    p.add_argument("--tokens", type=int, default=8000, help="sandbox-signed tokens for the ingest comparison")
    p.add_argument("--connections", type=int, default=8, help="keep-alive connections per load process")
    p.add_argument("--load-processes", type=int, default=2)
    p.add_argument("--users", type=int, default=200)
    p.add_argument("--workers", type=int, default=2, help="worker launchers (one worker process each)")
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--start-rate", type=float, default=5.0, help="plan changes/s of the first ramp step")
    p.add_argument("--step-s", type=float, default=15.0)
    p.add_argument("--hold-s", type=float, default=120.0)
    p.add_argument("--drain-s", type=float, default=30.0, help="all roles correct within this after a step")
    p.add_argument("--p99-limit-s", type=float, default=3.0)
    p.add_argument("--no-peer", action="store_true", help="skip the Express peer")
    p.add_argument("--docs", default=str(DOCS), help="file whose `## Load` section gets the figures ('' = none)")
    return p.parse_args(argv)


def ramp(kinde: SandboxClient, users: Any, opts: argparse.Namespace) -> tuple[list[dict[str, Any]], float]:
    """Double the rate until a step does not hold, then try 1.5x the last good one; the best rate held."""
    ceiling = len(users.ids) / (2 * opts.p99_limit_s)  # a user's next change must not overlap its last
    steps: list[dict[str, Any]] = []
    good, rate = 0.0, opts.start_rate
    while rate <= ceiling and (not steps or held(steps[-1], opts.p99_limit_s)):
        steps.append(step(kinde, users, Step(rate, opts.step_s), opts))
        good = rate if held(steps[-1], opts.p99_limit_s) else good
        rate *= 2
    if good and not held(steps[-1], opts.p99_limit_s) and good * 1.5 <= ceiling:
        steps.append(step(kinde, users, Step(good * 1.5, opts.step_s), opts))
        good = good * 1.5 if held(steps[-1], opts.p99_limit_s) else good
    return steps, good or opts.start_rate


def step(kinde: SandboxClient, users: Any, plan: Step, opts: argparse.Namespace) -> dict[str, Any]:
    before = len(kinde.calls())
    result = figures(kinde, drive(kinde, users, plan, opts.drain_s), before)
    print(f"step {plan.rate:g} changes/s: {json.dumps(result)}", file=sys.stderr)
    if result["drained_s_after_last_change"] is None:  # let the backlog go before the next step
        drive(kinde, users, Step(plan.rate, 0.0), 300)
    return result


def hold(pipe: Pipe, users: Any, rate: float, opts: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    r = pipe.r()
    before = int(r.info("memory")["used_memory"])
    with sampling(r) as memory:
        result = step(pipe.kinde, users, Step(rate, opts.hold_s), opts)
    after = int(r.info("memory")["used_memory"])
    mb = 1024 * 1024
    return result, {
        "before_mb": round(before / mb, 2), "after_mb": round(after / mb, 2),
        "retained_per_10k_mb": round((after - before) / mb / max(1, result["webhooks"]) * 10_000, 2),
        "peak_mb": round((max((s[1] for s in memory.samples), default=before) - before) / mb, 2),
        "max_queue": max((s[2] for s in memory.samples), default=0),
    }  # fmt: skip


def run(opts: argparse.Namespace, log_dir: Path, node: str | None) -> dict[str, Any]:
    env = {"KINDE_API_RPS": "1000"}
    options = PipeOptions(workers=0, threads=opts.threads, env=env, deliver=False, fsync="everysec")
    with running_pipe(log_dir, options) as pipe:
        pipe.kinde.set_rate_limit(0)
        ingest_port = int(pipe.ingest_url.rsplit(":", 1)[1])
        comparison = compare(pipe.kinde, pipe.sandbox_url, ingest_port, opts, log_dir, node)
        pipe.r().flushdb()
        pipe.kinde.set_webhooks(url=pipe.webhook_url, shuffle=False)
        for slot in range(opts.workers):
            pipe.start_worker(slot)
        users = sign_up(pipe.kinde, opts.users)
        steps, rate = ramp(pipe.kinde, users, opts)
        held_result, memory = hold(pipe, users, rate, opts)
    return {"comparison": comparison, "ramp": steps, "hold": held_result, "memory": memory,
            "held": held(held_result, opts.p99_limit_s), "users": opts.users, "workers": opts.workers,
            "threads": opts.threads, "p99_limit_s": opts.p99_limit_s}  # fmt: skip


def recorded(argv: list[str]) -> str:
    """The command as a reader would rerun it: `--docs` only says where the figures go."""
    kept = [a for i, a in enumerate(argv) if not a.startswith("--docs") and (i == 0 or argv[i - 1] != "--docs")]
    return shlex.join([".venv/bin/python", "-m", "bench", "load", *kept])


def main(argv: list[str]) -> int:
    opts = parse(argv)
    node = None if opts.no_peer else node_version()
    if node is None:
        print("Express peer SKIPPED: " + ("--no-peer" if opts.no_peer else "node/npm not on PATH"), file=sys.stderr)
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    with TemporaryDirectory(prefix="bench-load-") as tmp:
        results = run(opts, Path(tmp), node)
    load_after = " ".join(f"{x:.2f}" for x in os.getloadavg())
    results["machine"] = {**machine(), "node": node, "load_before": load_before, "load_after": load_after}
    results["command"] = recorded(argv)
    print(json.dumps(results, indent=2))
    print(text(results))
    if opts.docs:
        write_section(Path(opts.docs), text(results), NOTES)
    return 0 if results["hold"]["drained_s_after_last_change"] is not None else 1
