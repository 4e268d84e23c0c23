"""Suite 4: Kinde faults. While the sandbox's webhooks flow, its Management API answers 20 % 5xx
(500/502/503), 5 % hangs past the worker's HTTP timeout, and a token bucket below the worker's own
rate gives real 429s with RateLimit-Reset; then a full outage (every call 503) for `outage_s`.

Figures: customers converged (target 100 %), dead letters (target 0: the sandbox gives no true
4xx here), 429s and 429s that followed another 429 within its reset window (the worker should
back off after the first), calls per plan change.
"""

from __future__ import annotations

import itertools
import random
import time
from pathlib import Path
from typing import Any

from chaos.crashes import generate
from chaos.figures import Result
from chaos.outcome import wait_converged, wrong_users
from chaos.suites import suite_pipe
from common import keys
from launch.pipe import Pipe, running_pipe
from launch.processes import wait_until

API = "* /api/v1/*"
STORM = {"error_500": 0.07, "error_502": 0.07, "error_503": 0.06, "hang_rate": 0.05, "hang_s": 3.0}
STORM_CALLS = 40  # calls the worker meets under the storm before the outage: ~8 5xx expected at 20 %
HTTP_TIMEOUT_S = 1.0  # the worker's Kinde timeout; hangs last hang_s, past it


def faulty(pipe: Pipe, rate: float) -> None:
    pipe.kinde.set_faults(API, **STORM)
    pipe.kinde.set_rate_limit(rate, burst=max(1, int(rate / 4)))


def outage(pipe: Pipe, seconds: float, timeout: float) -> tuple[float, float]:
    """Every call 503 for `seconds`, and on until the worker has met it at least once (up to `timeout`)."""
    pipe.kinde.set_faults(API, error_503=1.0)
    started = time.time()
    time.sleep(seconds)
    wait_until(lambda: answered(pipe, 503, since=started), timeout=timeout, what="a call during the outage")
    pipe.kinde.clear_faults()
    return started, time.time()


def storm_met(pipe: Pipe, calls: int, timeout: float) -> None:
    """On a loaded box the worker can fall behind the paced flow: the storm stays on until it has met
    `calls` Management API calls, so the run asserts what the worker rode out, not what it slept through."""
    wait_until(lambda: len(pipe.kinde.calls()) >= calls, timeout=timeout, what=f"{calls} calls under the storm")


def answered(pipe: Pipe, status: int, *, since: float) -> bool:
    return any(c["status"] == status and c["time"] >= since for c in pipe.kinde.calls())


def repeat_429s(calls: list[dict[str, Any]], window_s: float) -> int:
    """429s answered within `window_s` of the previous 429: calls a client honouring RateLimit-Reset avoids."""
    times = sorted(c["time"] for c in calls if c["status"] == 429)
    return sum(1 for earlier, later in itertools.pairwise(times) if later - earlier < window_s)


def run(log_dir: Path, *, seed: int, command: str, events: int = 2000, flow_s: float = 40.0, outage_s: float = 60.0,
        rate: float = 20.0, timeout: float = 900) -> Result:  # fmt: skip
    env = {"KINDE_HTTP_TIMEOUT_S": str(HTTP_TIMEOUT_S), "KINDE_API_RPS": str(rate * 2)}
    with running_pipe(log_dir, suite_pipe(workers=2, threads=4, env=env or {})) as pipe:
        pipe.kinde.set_webhooks(url=pipe.webhook_url, variant="mix")
        faulty(pipe, rate)
        expected = generate(pipe, events, flow_s, random.Random(seed), lambda: None)
        storm_met(pipe, STORM_CALLS, timeout)
        down = outage(pipe, outage_s, timeout)
        pipe.kinde.set_rate_limit(0)
        seconds = wait_converged(pipe.kinde, pipe.r(), expected, timeout=timeout)
        return _result(pipe, expected, down, seconds, rate, command)


def _result(pipe: Pipe, expected: dict[str, list[str]], down: tuple[float, float], seconds: float, rate: float,
            command: str) -> Result:  # fmt: skip
    calls, wrong = pipe.kinde.calls(), wrong_users(pipe.kinde, expected)
    dead = pipe.r().zcard(keys.DEAD_LETTERS)
    statuses: dict[str, int] = {}
    for call in calls:
        statuses[str(call["status"])] = statuses.get(str(call["status"]), 0) + 1
    result = Result("faults", "Kinde faults", command)
    result.figures.update({
        "customers": len(expected), "converged %": round(100 * (1 - len(wrong) / max(1, len(expected))), 2),
        "dead letters": dead, "Management API answers": statuses,
        "429s that followed another within 1/R s": repeat_429s(calls, 1 / rate),
        "outage seconds (every call 503)": round(down[1] - down[0], 1),
        "seconds to converge after the outage": round(seconds, 1), "storm": STORM, "rate limit R": rate,
        "worker KINDE_API_RPS": rate * 2, "worker KINDE_HTTP_TIMEOUT_S": HTTP_TIMEOUT_S,
    })  # fmt: skip
    result.target("all customers converge (100 %)", not wrong)
    result.target("dead letters == 0", dead == 0)
    return result
