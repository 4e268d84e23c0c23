"""Suite: Redis loses its data (issue 26). A FLUSHALL in the middle of steady traffic, then the fleet must notice
(common/infra/data_epoch.py) and heal from Kinde (worker/sweeps/data_heal.py): 0 customers wrong once healed,
the ingest never refusing a webhook for it. Then the time to heal N customers whose every role the lost data held:
N customers with plans, their webhooks never delivered, a FLUSHALL, and the clock runs until each holds its roles again.
"""

from __future__ import annotations

import contextlib
import random
import time
from pathlib import Path
from typing import Any

import redis

from chaos.crashes import generate
from chaos.duplicates import PLANS, roles_of
from chaos.figures import Result
from chaos.outcome import wait_converged, wrong_users
from chaos.suites import suite_pipe
from common.infra import data_loss
from launch.pipe import Pipe, running_pipe
from launch.processes import wait_until

NOTICED_WITHIN_S = 60.0  # every process checks the epoch every 2 s; on a loaded box allow far more


class Loss:
    """FLUSHALLs Redis once the flow is `at_s` old."""

    def __init__(self, pipe: Pipe, at_s: float) -> None:
        self.pipe, self.at_s, self.started = pipe, at_s, time.monotonic()
        self.flushed_at: float | None = None

    def maybe(self) -> None:
        if self.flushed_at is None and time.monotonic() - self.started >= self.at_s:
            flush(self.pipe)
            self.flushed_at = time.time()


def flush(pipe: Pipe) -> None:
    wait_until(lambda: pipe.r().exists("rolesync:epoch"), timeout=NOTICED_WITHIN_S, what="an epoch to lose")
    pipe.r().flushall()


def wait_healed(r: redis.Redis, timeout: float) -> data_loss.DataLoss | None:
    """The healed record, or None if no heal ended in time (a target missed, said with its figures)."""
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: (found := data_loss.last(r)) is not None and not found.healing, timeout=timeout,
                   interval=0.5, what="the data loss healed")  # fmt: skip
    found = data_loss.last(r)
    return found if found is not None and not found.healing else None


def since(flushed: float, at: float | None) -> float | str:
    return round(at - flushed, 1) if at else "never"


def traffic(
    log_dir: Path, *, events: int, flow_s: float, seed: int, timeout: float, env: dict[str, str]
) -> dict[str, Any]:
    with running_pipe(log_dir / "traffic", suite_pipe(workers=2, threads=4, env=env)) as pipe:
        pipe.kinde.set_webhooks(url=pipe.webhook_url, variant="mix")
        loss = Loss(pipe, flow_s / 2)
        expected = generate(pipe, events, flow_s, random.Random(seed), loss.maybe)
        wait_until(lambda: pipe.kinde.pending_deliveries() == 0, timeout=timeout, what="deliveries")
        healed = wait_healed(pipe.r(), timeout)
        seconds = wait_converged(pipe.kinde, pipe.r(), expected, timeout=timeout)
        flushed = loss.flushed_at or 0.0
        refused = [d for d in pipe.kinde.deliveries() if d["status"] != 200 and d["time"] >= flushed]
        return {
            "customers": len(expected), "plan changes sent": len(pipe.kinde.deliveries()),
            "webhooks refused after the FLUSHALL": len(refused),
            "seconds from FLUSHALL to noticed": since(flushed, healed.noticed_at if healed else None),
            "seconds from FLUSHALL to healed": since(flushed, healed.healed_at if healed else None),
            "customers the heal re-converged": healed.customers if healed else 0,
            "seconds to converge after the last delivery": round(seconds, 1),
            "customers wrong": len(wrong_users(pipe.kinde, expected)),
        }  # fmt: skip


def heal_time(log_dir: Path, *, customers: int, seed: int, timeout: float, env: dict[str, str]) -> dict[str, Any]:
    """Every customer's roles held only in the lost data: their webhooks are never delivered."""
    with running_pipe(log_dir / "heal", suite_pipe(workers=2, threads=4, env=env)) as pipe:
        rng, expected = random.Random(seed), {}
        for _ in range(customers):
            user = pipe.kinde.create_user(send_webhook=False)
            plan = rng.choice(PLANS)
            pipe.kinde.change_plan(user["customer_id"], plan)
            expected[user["id"]] = roles_of(plan)
        flush(pipe)
        flushed = time.time()
        wait_healed(pipe.r(), timeout)
        seconds = wait_converged(pipe.kinde, pipe.r(), expected, timeout=timeout)
        return {
            "customers to heal": customers, "seconds from FLUSHALL to every role back": round(time.time() - flushed, 1),
            "of which converging after the heal's record said healed": round(seconds, 1),
            "customers wrong after the heal": len(wrong_users(pipe.kinde, expected)),
        }  # fmt: skip


def run(log_dir: Path, *, seed: int, command: str, events: int = 1000, flow_s: float = 30.0, heal: int = 1000,
        timeout: float = 900, env: dict[str, str] | None = None) -> Result:  # fmt: skip
    result, env = Result("redis-loss", "Redis data lost (FLUSHALL) and healed", command), env or {}
    figures = traffic(log_dir, events=events, flow_s=flow_s, seed=seed, timeout=timeout, env=env)
    figures.update(heal_time(log_dir, customers=heal, seed=seed, timeout=timeout, env=env))
    result.figures.update(figures)
    result.target("the loss noticed and healed", figures["seconds from FLUSHALL to healed"] != "never")
    result.target("customers wrong after a FLUSHALL mid-traffic == 0", figures["customers wrong"] == 0)
    result.target("webhooks refused after the FLUSHALL == 0", figures["webhooks refused after the FLUSHALL"] == 0)
    result.target(f"{heal} customers healed, 0 wrong", figures["customers wrong after the heal"] == 0)
    return result
