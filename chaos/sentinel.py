"""Suite: Redis Sentinel failover. The pipe runs on `redis+sentinel://` (a primary, a replica, three
sentinels: chaos/sentinel_group.py); halfway through the flow the primary is SIGKILLed, the sentinels
promote the replica, and the old primary comes back and is demoted, while the sandbox keeps delivering
webhooks to the real ingest (retrying what is refused, as Kinde does).

Figures: events answered 200 that no worker ever handled (lost), answers during the switch (only 503s
are right: never a 200 whose event is then lost), seconds from the kill to the new primary, from the
new primary to the ingest's next 200 and to a worker finishing an event again, and
customers wrong at the end.
"""

from __future__ import annotations

import random
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from chaos.crashes import generate
from chaos.figures import Result
from chaos.logs import FINAL_EVENTS, handled_event_ids, json_records
from chaos.outcome import pending_event_ids, wait_converged, wrong_users
from chaos.sentinel_group import SentinelGroup
from chaos.suites import suite_pipe
from launch.pipe import Pipe, running_pipe
from launch.processes import wait_until

RESUME_TARGET_S = 10.0


class Failover:
    """Kills the primary once the flow is `at_s` old; a thread waits for the new one, then restarts the old."""

    def __init__(self, group: SentinelGroup, at_s: float, timeout: float) -> None:
        self.group, self.at_s, self.timeout = group, at_s, timeout
        self.started = time.monotonic()
        self.killed_at: float | None = None
        self.promoted_at: float | None = None
        self.thread: threading.Thread | None = None

    def maybe(self) -> None:
        if self.killed_at is None and time.monotonic() - self.started >= self.at_s:
            old = self.group.primary_port()
            self.group.crash()
            self.killed_at = time.time()
            self.thread = threading.Thread(target=self._follow, args=(old,), daemon=True)
            self.thread.start()

    def join(self) -> None:
        if self.thread is not None:
            self.thread.join(timeout=self.timeout)

    def _follow(self, old: int) -> None:
        self.promoted_at = self.group.wait_failover(old, timeout=self.timeout)
        self.group.restart_killed()  # comes back saying "primary": the sentinels must demote it


def run(log_dir: Path, *, seed: int, command: str, events: int = 1000, flow_s: float = 30.0,
        timeout: float = 600, env: dict[str, str] | None = None) -> Result:  # fmt: skip
    group = SentinelGroup(log_dir / "sentinel")
    with running_pipe(log_dir, suite_pipe(workers=2, threads=4, env=env or {}), redis_server=group) as pipe:
        pipe.kinde.set_webhooks(url=pipe.webhook_url, variant="mix")
        failover = Failover(group, flow_s / 2, timeout=min(timeout, 60))
        expected = generate(pipe, events, flow_s, random.Random(seed), failover.maybe)
        failover.join()
        wait_until(lambda: pipe.kinde.pending_deliveries() == 0, timeout=timeout, what="deliveries")
        seconds = wait_converged(pipe.kinde, pipe.r(), expected, timeout=timeout)
        figures = _figures(pipe, expected, failover, seconds)
    return _judged(Result("sentinel", "Redis Sentinel failover", command), figures)


def _figures(pipe: Pipe, expected: dict[str, list[str]], failover: Failover, seconds: float) -> dict[str, Any]:
    attempts = pipe.kinde.deliveries()
    accepted = {d["event_id"] for d in attempts if d["status"] == 200}
    lost = accepted - handled_event_ids(pipe.log_dir) - pending_event_ids(pipe.r())
    killed, promoted = failover.killed_at or 0.0, failover.promoted_at
    refused = [d for d in attempts if d["status"] != 200 and d["time"] >= killed]
    return {
        "events accepted (200)": len(accepted), "200s for events later lost": len(lost),
        "non-200 answers after the kill": _by_status(refused),
        "seconds from the kill to the new primary": _since(killed, promoted),
        "seconds from the new primary to the ingest's next 200": _since(promoted, _first_200(attempts, promoted)),
        "seconds from the new primary to a worker finishing an event": _since(promoted, _resumed(pipe, promoted)),
        "seconds to converge after the last delivery": round(seconds, 1),
        "customers wrong": len(wrong_users(pipe.kinde, expected)),
    }  # fmt: skip


def _judged(result: Result, figures: dict[str, Any]) -> Result:
    result.figures.update(figures)
    result.target("200s for events later lost == 0", figures["200s for events later lost"] == 0)
    result.target("answers during the switch are 503s only", set(figures["non-200 answers after the kill"]) <= {"503"})
    resumed = figures["seconds from the new primary to a worker finishing an event"]
    result.target(f"workers resume within {RESUME_TARGET_S:.0f} s", resumed != "never" and resumed <= RESUME_TARGET_S)
    result.target("customers wrong == 0", figures["customers wrong"] == 0)
    return result


def _first_200(attempts: list[dict[str, Any]], after: float | None) -> float | None:
    times = [d["time"] for d in attempts if d["status"] == 200 and after is not None and d["time"] >= after]
    return min(times, default=None)


def _resumed(pipe: Pipe, after: float | None) -> float | None:
    """When a worker first finished an event after the new primary (each pass reads and writes Redis)."""
    if after is None:
        return None
    done = (
        datetime.fromisoformat(str(rec["timestamp"])).timestamp()
        for rec in json_records(pipe.log_dir, "worker")
        if rec.get("event") in FINAL_EVENTS
    )
    return min((at for at in done if at >= after), default=None)


def _since(start: float | None, end: float | None) -> float | str:
    return round(end - start, 2) if start is not None and end is not None else "never"


def _by_status(attempts: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for attempt in attempts:
        key = str(attempt["status"] or "no answer")
        counts[key] = counts.get(key, 0) + 1
    return counts
