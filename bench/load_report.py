"""Figures of `python -m bench load`: printed, and written as docs/benchmarks.md `## Load`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def ingest_rows(comparison: dict[str, Any]) -> list[str]:
    rows = ["| app | req/s | p50 ms | p99 ms | 200s / requests |", "|---|---|---|---|---|"]
    for name, label in (("ingest", "our ingest (`rolesync ingest`, Redis)"), ("express", "Express + @kinde/webhooks")):
        r = comparison[name]
        if "skipped" in r:
            rows.append(f"| {label} | skipped: {r['skipped']} | | | |")
            continue
        rows.append(
            f"| {label} | {r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['ok']} / {r['requests']} |"
        )
    return rows


def pipe_rows(steps: list[dict[str, Any]], hold: dict[str, Any]) -> list[str]:
    head = "| run | changes/s asked | webhooks/s | p50 / p99 / max s | changes written "
    head += "| drained after | Kinde calls per event (per change) | 429s |"
    rows = [head, "|---|---|---|---|---|---|---|---|"]
    for label, r in [*((f"ramp {i + 1}", s) for i, s in enumerate(steps)), ("**hold**", hold)]:
        drained = (
            "not within limit" if r["drained_s_after_last_change"] is None else f"{r['drained_s_after_last_change']} s"
        )
        rows.append(
            f"| {label} ({r['seconds']} s) | {r['rate_changes_per_s']:g} | {r['webhooks_per_s']} | "
            f"{r['p50_s']} / {r['p99_s']} / {r['max_s']} | {r['changes_with_writes']}/{r['changes']} | {drained} | "
            f"{r['kinde_calls_per_event']} ({r['kinde_calls_per_change']}) | {r['kinde_429s']} |"
        )
    return rows


def text(results: dict[str, Any]) -> str:
    m, hold = results["machine"], results["hold"]
    lines = [
        f"Command: `{results['command']}`. Machine: {m['nproc']} vCPU ({m['cpu']}), Python {m['python']}, "
        f"node {m['node'] or 'missing'}, {m['date']}; "
        f"load average (1/5/15 min) before / after: {m['load_before']} / {m['load_after']}.",
        "",
        "(a) Ingest comparison, same sandbox-signed tokens, same load generator, closed loop:",
        "",
        *ingest_rows(results["comparison"]),
        "",
        f"(b) Whole pipe (sandbox → ingest → {results['workers']} worker launchers x {results['threads']} threads "
        f"→ roles), {results['users']} users; sandbox rate limit off and KINDE_API_RPS=1000, "
        "so Kinde's limit is not the bottleneck:",
        "",
        *pipe_rows(results["ramp"], hold),
        "",
        f"Held rate: **{hold['webhooks_per_s']} webhooks/s** for {hold['seconds']} s "
        f"({'held' if results['held'] else 'NOT held'}: p99 limit {results['p99_limit_s']} s). "
        f"Redis memory: {results['memory']['retained_per_10k_mb']} MB retained per 10k events "
        f"(used_memory after drain - before), peak +{results['memory']['peak_mb']} MB during the hold, "
        f"max queue depth {results['memory']['max_queue']}. Kinde calls by endpoint during the hold: "
        f"{hold['kinde_calls_by_endpoint']}.",
    ]
    return "\n".join(lines) + "\n"


def write_section(path: Path, body: str, notes: str) -> None:
    """Replace everything under `## Load` (to the next `## ` heading or the end) with `body` + `notes`."""
    doc = path.read_text() if path.exists() else "# Benchmarks\n"
    section = f"## Load\n\n{body}\n{notes}"
    pattern = re.compile(r"^## Load\n.*?(?=^## |\Z)", re.S | re.M)
    doc = pattern.sub(lambda _: section, doc) if pattern.search(doc) else doc.rstrip("\n") + "\n\n" + section
    path.write_text(doc)


NOTES = """How it runs (`bench/load.py`): one real pipe from `launch/pipe.py` (embedded Valkey with AOF
everysec, `rolesync sandbox`, `rolesync ingest`, `rolesync worker` launchers), all on this machine's
2 cores together with the load generator. (a) runs before any worker starts and the database is
flushed afterwards. The Express peer is `bench/peers/express-kinde/server.js`: `express.text()` then
`decodeWebhook(token, KINDE_DOMAIN)`, 200 on an event, 400 for an empty body, 401 when it answers
null. The npm registry serves only `@kinde/webhooks` 1.0.0 (pinned); its `decodeWebhook` builds a
new remote key set on every call (dist/webhooks.js), so each webhook costs one JWKS fetch from the
sandbox — that is what its users run, and part of its figure. (b) finds the rate with a ramp
(doubling, then one step at 1.5x the last good rate), then holds it. Latency is from asking the
sandbox for a plan change (its three webhooks fire at once) to the sandbox's timestamp of the last
role write for that user; it includes the worker's deliberate 1 s settle wait. Kinde calls and 429s
come from the sandbox's call log; webhooks are distinct event ids the sandbox delivered in the window.
"""
