"""Suite 2: worker crashes. 4 worker launchers; every 5 s one worker process is SIGKILLed while
the sandbox's webhooks flow into the real ingest, and its launcher is started again at once (a
supervisor's restart). Figures: events lost, customers wrong, time to recover each killed worker's
messages. The last plan change of every customer is made inside the kill window, so a lost event
shows up as a customer with the wrong roles.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path

from chaos.duplicates import PLANS, roles_of
from chaos.figures import Result
from chaos.logs import handled_event_ids
from chaos.outcome import covered_in_redis, pending_event_ids, wait_converged, wrong_users
from chaos.recovery import RecoveryWatch, unacked_snapshot
from chaos.suites import suite_pipe
from launch.pipe import Pipe, running_pipe
from launch.processes import wait_until

WORKERS = 4  # launchers in a full run; a smoke run starts fewer (chaos/suites.py)


def worker_pid(pipe: Pipe, slot: int) -> int | None:
    """The Dramatiq worker process of a launcher: its first child (fork functions start after it)."""
    main = pipe.workers[slot].popen.pid
    try:
        children = Path(f"/proc/{main}/task/{main}/children").read_text().split()
    except OSError:
        return None
    return min((int(pid) for pid in children), default=None)


def kill_one(pipe: Pipe, slot: int, watch: RecoveryWatch, threads: int) -> bool:
    pid = worker_pid(pipe, slot)
    if pid is None:
        return False
    snapshot = unacked_snapshot(pipe.r())
    at = time.time()
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    watch.killed(at, snapshot)
    pipe.workers[slot].stop(timeout=30)  # Dramatiq's main stops the rest once a worker dies
    pipe.start_worker(slot, threads=threads)
    return True


def generate(
    pipe: Pipe, events: int, flow_s: float, rng: random.Random, chaos: Callable[[], None]
) -> dict[str, list[str]]:
    """Users first, then plan changes paced over `flow_s`, calling `chaos()` between changes."""
    customers = max(1, events // 10)
    users = [pipe.kinde.create_user() for _ in range(customers)]
    final: dict[str, str] = {}
    changes = max(1, (events - customers) // 2)
    started = time.monotonic()
    for n in range(changes):
        user = users[n % customers]
        final[user["id"]] = rng.choice(PLANS)
        pipe.kinde.change_plan(user["customer_id"], final[user["id"]])
        _pace(started, (n + 1) / changes * flow_s)
        chaos()
    return {u["id"]: roles_of(final.get(u["id"])) for u in users}


def _pace(started: float, due: float) -> None:
    ahead = due - (time.monotonic() - started)
    if ahead > 0:
        time.sleep(ahead)


def run(log_dir: Path, *, events: int, seed: int, command: str, flow_s: float = 90.0, every_s: float = 5.0,
        threads: int = 4, timeout: float = 600, env: dict[str, str] | None = None,
        workers: int = WORKERS) -> Result:  # fmt: skip
    with running_pipe(log_dir, suite_pipe(workers=workers, threads=threads, env=env or {})) as pipe:
        pipe.kinde.set_webhooks(url=pipe.webhook_url, variant="mix")
        watch = RecoveryWatch(pipe.redis_url)
        kills = Kills(pipe, watch, every_s, threads, workers)
        expected = generate(pipe, events, flow_s, random.Random(seed), kills.maybe)
        kills.finish(int(flow_s / every_s))
        wait_until(lambda: pipe.kinde.pending_deliveries() == 0, timeout=timeout, what="deliveries")
        seconds = wait_converged(pipe.kinde, pipe.r(), expected, timeout=timeout)
        watch.wait(timeout=120)
        return _result(pipe, expected, watch, kills.count, seconds, command)


class Kills:
    def __init__(self, pipe: Pipe, watch: RecoveryWatch, every_s: float, threads: int, workers: int) -> None:
        self.pipe, self.watch, self.every_s, self.threads, self.workers = pipe, watch, every_s, threads, workers
        self.count, self.last = 0, time.monotonic()

    def maybe(self) -> None:
        if time.monotonic() - self.last >= self.every_s:
            self.last = time.monotonic()
            self.count += kill_one(self.pipe, self.count % self.workers, self.watch, self.threads)

    def finish(self, planned: int) -> None:
        """Kills a slow flow left out still happen, while the workers chew through the backlog."""
        while self.count < planned:
            time.sleep(max(0.0, self.every_s - (time.monotonic() - self.last)))
            self.last = time.monotonic()
            self.count += kill_one(self.pipe, self.count % self.workers, self.watch, self.threads)


def _result(pipe: Pipe, expected: dict[str, list[str]], watch: RecoveryWatch, kills: int, seconds: float,
            command: str) -> Result:  # fmt: skip
    accepted = {d["event_id"] for d in pipe.kinde.deliveries() if d["status"] == 200}
    pending = pending_event_ids(pipe.r())
    unlogged = accepted - handled_event_ids(pipe.log_dir) - pending
    lost = {event_id for event_id in unlogged if not covered_in_redis(pipe.r(), event_id)}
    wrong = wrong_users(pipe.kinde, expected)
    busy = [r for r in watch.recoveries if r.unacked_at_kill]
    times = sorted(r.seconds for r in busy if r.seconds is not None)
    result = Result("crashes", "Worker crashes", command)
    result.figures.update({
        "worker processes": len(pipe.workers), "kills (SIGKILL)": kills, "events accepted by the ingest": len(accepted),
        "events with no final worker log line": len(unlogged),
        "events lost (accepted, never handled nor dead-lettered)": len(lost),
        "lost event ids (first 5)": sorted(lost)[:5], "customers": len(expected),
        "events still pending at the end (late, not lost)": len(pending),
        "customers wrong": len(wrong), "seconds to converge after the last delivery": round(seconds, 1),
        "killed workers holding unacked messages": len(busy),
        "unacked messages at the kills": sum(r.unacked_at_kill for r in busy),
        "recovery seconds (min/median/max)": _spread(times), "not recovered": len(busy) - len(times),
        "settings": {k: v for k, v in pipe.env.items() if k.startswith("ROLESYNC_") and "PLANS" not in k},
    })  # fmt: skip
    result.target("events lost == 0", not lost)
    result.target("customers wrong == 0", not wrong)
    result.target("every killed worker's messages recovered", len(times) == len(busy))
    return result


def _spread(times: list[float]) -> str:
    if not times:
        return "n/a"
    return f"{times[0]:.1f} / {times[len(times) // 2]:.1f} / {times[-1]:.1f}"
