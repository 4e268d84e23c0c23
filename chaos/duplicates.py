"""Suite 1: duplicates and ordering through the real pipe.

The sandbox makes the users and plan changes and signs every webhook; they are captured, then the
whole stream is shuffled and each webhook POSTed 3 times at once to the real ingest, feeding real
worker processes. Every plan change happens before the replay, so each customer needs exactly the
writes from no roles to its final plan's roles: any extra write is a wasted or racing call.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from chaos.capture import Captured, capturing
from chaos.figures import Result
from chaos.outcome import role_writes, wait_converged, wrong_users
from chaos.suites import suite_pipe
from launch.pipe import Pipe, running_pipe
from launch.processes import wait_until
from sandbox.client import SandboxClient

PLANS = ("plan_client", "plan_subscriber")


def roles_of(plan: str | None) -> list[str]:
    return [f"role_{plan.removeprefix('plan_')}"] if plan else []


def make_history(
    kinde: SandboxClient, captured: Captured, customers: int, events: int, rng: random.Random
) -> dict[str, list[str]]:
    """Users, then rounds of plan changes until the sandbox has sent `events` webhooks; expected roles."""
    users = [kinde.create_user() for _ in range(customers)]
    final: dict[str, str | None] = {u["id"]: None for u in users}
    while _settled(kinde, captured) < events:
        for user in users:
            final[user["id"]] = _act(kinde, user["customer_id"], final[user["id"]], rng)
    return {user: roles_of(plan) for user, plan in final.items()}


def _settled(kinde: SandboxClient, captured: Captured) -> int:
    wait_until(lambda: kinde.pending_deliveries() == 0, timeout=120, what="sandbox deliveries")
    return captured.count()


def _act(kinde: SandboxClient, customer: str, current: str | None, rng: random.Random) -> str | None:
    if current and rng.random() < 0.15:
        kinde.cancel_plan(customer)
        return None
    plan = rng.choice(PLANS)
    kinde.change_plan(customer, plan)
    return plan


def run(log_dir: Path, *, customers: int, events: int, seed: int, command: str, timeout: float = 600) -> Result:
    # This suite measures duplicates and ordering, not Kinde's rate limit: at the default 10 calls/s
    # 1,000 customers need minutes of pure throttling, so the sandbox (unlimited) is called at 100/s.
    env = {"KINDE_API_RPS": "100"}
    with (
        running_pipe(log_dir, suite_pipe(workers=2, threads=8, env=env or {})) as pipe,
        capturing() as (hook_url, captured),
    ):
        return measure(pipe, hook_url, captured, customers=customers, events=events, seed=seed, command=command,
                       timeout=timeout)  # fmt: skip


def measure(pipe: Pipe, hook_url: str, captured: Captured, **opts: object) -> Result:
    customers, events, seed = int(str(opts["customers"])), int(str(opts["events"])), int(str(opts["seed"]))
    pipe.kinde.set_webhooks(url=hook_url, variant="mix")
    expected = make_history(pipe.kinde, captured, customers, events, random.Random(seed))
    writes_before = role_writes(pipe.kinde.calls())
    started = time.monotonic()
    retried: Counter[str] = Counter()
    answers = pipe_replay(pipe, captured, seed, retried)
    replayed = time.monotonic() - started
    seconds = wait_converged(pipe.kinde, pipe.r(), expected, timeout=float(str(opts["timeout"])))
    result = _result(pipe, expected, captured, answers, writes_before, replayed, seconds, str(opts["command"]))
    result.figures["no answer, sent again (as Kinde retries)"] = dict(retried)
    return result


def pipe_replay(pipe: Pipe, captured: Captured, seed: int, retried: Counter[str]) -> dict[int, int]:
    from chaos.replay import replay

    return dict(replay(pipe.webhook_url, captured.webhooks, seed=seed, retried=retried))


def _result(pipe: Pipe, expected: dict[str, list[str]], captured: Captured, answers: dict[int, int],
            writes_before: int, replayed: float, seconds: float, command: str) -> Result:  # fmt: skip
    needed = sum(len(roles) for roles in expected.values())
    made = role_writes(pipe.kinde.calls()) - writes_before
    wrong = wrong_users(pipe.kinde, expected)
    result = Result("duplicates", "Duplicates and ordering", command)
    result.figures.update({
        "customers": len(expected), "events (signed by the sandbox)": captured.count(),
        "deliveries (3x each, concurrent, shuffled)": sum(answers.values()), "ingest answers": answers,
        "replay seconds": round(replayed, 1), "seconds to converge after replay": round(seconds, 1),
        "role writes needed": needed, "role writes made": made, "customers wrong": len(wrong),
    })  # fmt: skip
    result.target("writes made == writes needed", made == needed)
    result.target("customers wrong == 0", not wrong)
    result.target("every delivery answered 200", set(answers) == {200})
    return result


Runner = Callable[..., Result]
