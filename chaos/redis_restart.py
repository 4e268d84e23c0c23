"""Suite 3: Redis restart. Valkey (AOF) is SIGKILLed mid-stream and restarted on the same port and
data dir while the sandbox keeps delivering webhooks to the real ingest; run once with
`appendfsync everysec` (the default until issue 7) and once with `always` (the default now).

Figures per mode: events the ingest answered 200 for that no worker ever handled (lost), answers
while Redis was down (503s; the sandbox retries those on Kinde's schedule), seconds from the
restart to the ingest's next 200, and customers wrong at the end.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

from chaos.crashes import generate
from chaos.figures import Result
from chaos.logs import handled_event_ids
from chaos.outcome import dramatiq_dead_event_ids, pending_event_ids, wait_converged, wrong_users
from chaos.suites import suite_pipe
from launch.pipe import Pipe, running_pipe
from launch.processes import wait_until


class Outage:
    """Crashes Valkey once the flow is `at_s` old, restarts it `down_s` later."""

    def __init__(self, pipe: Pipe, at_s: float, down_s: float) -> None:
        self.pipe, self.at_s, self.down_s = pipe, at_s, down_s
        self.started = time.monotonic()
        self.crashed_at: float | None = None
        self.restarted_at: float | None = None

    def maybe(self) -> None:
        age = time.monotonic() - self.started
        if self.crashed_at is None and age >= self.at_s:
            self.pipe.redis_server.crash()
            self.crashed_at = time.time()
        elif self.crashed_at is not None and self.restarted_at is None and age >= self.at_s + self.down_s:
            self.pipe.redis_server.start()
            self.restarted_at = time.time()


def one_mode(log_dir: Path, fsync: str, *, events: int, flow_s: float, down_s: float, seed: int,
             timeout: float, env: dict[str, str] | None) -> dict[str, Any]:  # fmt: skip
    with running_pipe(log_dir / fsync, suite_pipe(workers=2, threads=4, env=env or {}, fsync=fsync)) as pipe:
        pipe.kinde.set_webhooks(url=pipe.webhook_url, variant="mix")
        outage = Outage(pipe, flow_s / 2, down_s)
        expected = generate(pipe, events, flow_s, random.Random(seed), outage.maybe)
        wait_until(lambda: pipe.kinde.pending_deliveries() == 0, timeout=timeout, what="deliveries")
        seconds = wait_converged(pipe.kinde, pipe.r(), expected, timeout=timeout)
        return _figures(pipe, expected, outage, seconds)


def _figures(pipe: Pipe, expected: dict[str, list[str]], outage: Outage, seconds: float) -> dict[str, Any]:
    attempts = pipe.kinde.deliveries()
    accepted = {d["event_id"] for d in attempts if d["status"] == 200}
    pending = pending_event_ids(pipe.r())
    lost = accepted - handled_event_ids(pipe.log_dir) - pending
    down = [d for d in attempts if d["status"] != 200]
    restarted = outage.restarted_at or 0.0
    first_ok = min((d["time"] for d in attempts if d["status"] == 200 and d["time"] >= restarted), default=None)
    return {
        "events accepted (200)": len(accepted), "200s for events later lost": len(lost),
        "of which in Dramatiq's XQ": len(lost & dramatiq_dead_event_ids(pipe.r())),
        "events still pending at the end": len(pending),
        "non-200 answers while down": _by_status(down),
        "seconds down": round(restarted - (outage.crashed_at or restarted), 1),
        "seconds from restart to the next 200": round(first_ok - restarted, 2) if first_ok else "never",
        "seconds to converge after the last delivery": round(seconds, 1),
        "customers wrong": len(wrong_users(pipe.kinde, expected)),
    }  # fmt: skip


def _by_status(attempts: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for attempt in attempts:
        key = str(attempt["status"] or "no answer")
        counts[key] = counts.get(key, 0) + 1
    return counts


def run(log_dir: Path, *, seed: int, command: str, events: int = 3000, flow_s: float = 30.0, down_s: float = 3.0,
        timeout: float = 600, env: dict[str, str] | None = None,
        modes: tuple[str, ...] = ("everysec", "always")) -> Result:  # fmt: skip
    result = Result("redis", "Redis restart", command)
    for fsync in modes:
        figures = one_mode(
            log_dir, fsync, events=events, flow_s=flow_s, down_s=down_s, seed=seed, timeout=timeout, env=env
        )
        result.figures.update({f"{fsync}: {name}": value for name, value in figures.items()})
        result.target(
            f"appendfsync {fsync}: 200s for events later lost == 0", figures["200s for events later lost"] == 0
        )
        result.target(f"appendfsync {fsync}: customers wrong == 0", figures["customers wrong"] == 0)
        # "late" must end too: a stranded or unconsumed delay queue kept events here for ever
        pending = figures["events still pending at the end"]
        result.target(f"appendfsync {fsync}: events still pending at the end == 0", pending == 0)
        result.target(
            f"appendfsync {fsync}: ingest answers 200 again", figures["seconds from restart to the next 200"] != "never"
        )
    return result
