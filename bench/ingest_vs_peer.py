"""Part (a) of `python -m bench load`: our ingest vs the Express + @kinde/webhooks peer.

Both verify against the sandbox's JWKS, get the same tokens (signed by the sandbox, unique event
ids) from the same keep-alive load generator (bench/http_load.py), closed loop, one after the
other. Our ingest runs as `rolesync ingest` with real Redis and JSON logs, as deployed.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.http_load import Plan, run_load
from bench.ingest import summary
from bench.ingest_tokens import event_claims
from bench.load_peer import express_peer
from sandbox.client import SandboxClient

WARMUP = 200


def sandbox_tokens(kinde: SandboxClient, count: int) -> list[str]:
    """`count` tokens signed with the sandbox's current key, so both apps find it in its JWKS."""
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda _: kinde.sign(event_claims()), range(count)))


def closed_loop(port: int, tokens: list[str], opts: argparse.Namespace) -> dict[str, Any]:
    run_load(Plan(port, 1.0, opts.connections), tokens[:WARMUP], processes=1)
    plan = Plan(port, opts.ingest_duration, opts.connections)
    load = run_load(plan, tokens[WARMUP:], processes=opts.load_processes)
    result = summary(load)
    result["ok"] = sum(n for answer, n in load.answers.items() if answer.startswith("200"))
    return result


def compare(kinde: SandboxClient, sandbox_url: str, ingest_port: int, opts: argparse.Namespace,
            log_dir: Path, node: str | None) -> dict[str, Any]:  # fmt: skip
    tokens = sandbox_tokens(kinde, WARMUP + opts.tokens)
    results: dict[str, Any] = {"ingest": closed_loop(ingest_port, tokens, opts)}
    if node is None:
        results["express"] = {"skipped": "node/npm not on PATH: the Express peer was not measured"}
        return results
    with express_peer(sandbox_url, log_dir) as port:
        results["express"] = closed_loop(port, tokens, opts)
    return results
