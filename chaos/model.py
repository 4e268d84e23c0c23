"""Suite: the access model (chaos/model_machine.py) over many sequences against real pipes.

`python -m chaos model [--sequences N] [--seed S] [--pipes P]` runs N sequences in batches, each batch a
Hypothesis run with its own seed (`seed`, `seed + 1`, ...) in which a failing sequence is counted,
not raised, so every sequence runs and every wrong (org, user) is counted. P pipes run side by side,
each in its own process with its own Valkey, sandbox, ingest, workers, Postgres and log directory,
each taking the next batch when done with one. Then the first failing seeds run again raising, and
Hypothesis shrinks their first failure to the step list that reproduces it.
"""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import seed as use_seed
from hypothesis.errors import Flaky
from hypothesis.stateful import run_state_machine_as_test

from chaos.figures import Result
from chaos.model_machine import AccessModel, Tally
from chaos.model_pipe import ModelPipe, model_pipe
from chaos.model_timing import TIMINGS, Timings

SEQUENCES, STEPS, BATCH, SHRINKS, PIPES = 2000, 20, 20, 1, 1
SHRINK_PHASES = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink)


def model_settings(examples: int, steps: int, *, shrink: bool, derandomize: bool = False) -> settings:
    # No deadline: a sequence waits for real processes. No example database: a pipe is not replayable state.
    return settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        derandomize=derandomize,
        database=None,
        phases=SHRINK_PHASES if shrink else (Phase.explicit, Phase.generate),
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )


def run_sequences(pipe: ModelPipe, chosen: settings, seed: int | None = None, *, raising: bool = True) -> None:
    """One Hypothesis run of the machine; raises the (shrunk, when shrinking) failure unless `raising` is off."""
    machine = type(f"AccessModelSeed{seed}", (AccessModel,), {"pipe": pipe, "raise_on_wrong": raising})
    if seed is not None:
        machine = use_seed(seed)(machine)
    run_state_machine_as_test(machine, settings=chosen)


def run(log_dir: Path, *, seed: int, command: str, sequences: int = SEQUENCES, steps: int = STEPS, batch: int = BATCH,
        shrinks: int = SHRINKS, pipes: int = PIPES, minutes: float | None = None) -> Result:  # fmt: skip
    """Count: every sequence runs and is checked, failing or not, on `pipes` pipes side by side (each its own
    processes and log directory `pipe<n>`), each taking the next batch until `sequences` are handed out, or
    until `minutes` have passed (no batch is handed out after; those running finish). Then shrink: up to
    `shrinks` failing seeds run again until their first failure, which Hypothesis shrinks (not once the time is up)."""
    started = time.monotonic()
    until = time.time() + minutes * 60 if minutes else None
    plan = Batches(sequences, batch, seed, until=until)
    if pipes == 1:
        counts = [count(log_dir, plan, steps)]
    else:
        with get_context("spawn").Manager() as manager, ProcessPoolExecutor(pipes, get_context("spawn")) as pool:
            shared = Batches(sequences, batch, seed, manager.Value("O", (0, 0)), manager.Lock(), until)
            futures = [pool.submit(count, log_dir / f"pipe{n}", shared, steps, f"pipe {n}: ") for n in range(pipes)]
            counts = [f.result() for f in futures]
    tally, seeds, failing = merged(counts)
    failures: list[str] = []
    if failing[:shrinks] and (until is None or time.time() < until):  # out of time: the reports as they ran
        with model_pipe(log_dir / "shrink") as pipe:
            failures = [found for s in failing[:shrinks] if (found := _shrink(pipe, s, steps))]
    result = _result(tally, seeds, failures, time.monotonic() - started, command, pipes)
    result.target(f"sequences run >= {sequences}", tally.sequences >= sequences)  # cut by --minutes: missed
    return result


@dataclass
class Batches:
    """Hands out batches (seed, size) until `sequences` are handed out: seeds `seed`, `seed + 1`, ... in order.

    One pipe counts in its own process; side by side, `handed` and `lock` are a manager's, shared by all."""

    sequences: int
    batch: int
    seed: int
    handed: Any = None  # side by side, a manager's value: (sequences, batches) handed out so far
    lock: Any = None
    until: float | None = None  # epoch seconds: no batch is handed out after
    _own: list[int] = field(default_factory=lambda: [0, 0])  # alone: the same, in this process

    def take(self) -> tuple[int, int] | None:
        """The next (seed, size), or None when every sequence is handed out or the time is up."""
        if self.until is not None and time.time() > self.until:
            return None
        if self.lock is None:
            return self._take(self._own)
        with self.lock:
            state = list(self.handed.value)
            found = self._take(state)
            self.handed.value = tuple(state)
            return found

    def _take(self, state: list[int]) -> tuple[int, int] | None:
        left = self.sequences - state[0]
        if left <= 0:
            return None
        size = min(self.batch, left)
        state[0], state[1] = state[0] + size, state[1] + 1
        return self.seed + state[1] - 1, size


@dataclass
class Counted:
    tally: Tally
    seeds: list[int]
    failing: list[int]  # seeds whose batch had a failing sequence
    timings: Timings = field(default_factory=Timings)  # where this pipe's wall time went


def count(log_dir: Path, plan: Batches, steps: int, prefix: str = "") -> Counted:
    """Run batches on one pipe until the plan is handed out; every sequence counted, failing or not."""
    AccessModel.tally = tally = Tally()
    seeds: list[int] = []
    failing: list[int] = []
    TIMINGS.clear()
    with TIMINGS.timed("pipe start"), model_pipe(log_dir) as pipe:
        while (taken := plan.take()) is not None:
            seeds.append(taken[0])
            failed_before = tally.failed_sequences
            try:
                with TIMINGS.timed("batches (all of a sequence's time)"):
                    run_sequences(pipe, model_settings(taken[1], steps, shrink=False), taken[0], raising=False)
            except Exception as exc:  # a broken sequence (not a wrong role) is a finding too; the next seed goes on
                print(f"{prefix}seed {taken[0]} broke: {shrunk(exc)[:2000]}", flush=True)
                tally.broken.append(f"seed {taken[0]}: {str(exc).splitlines()[0][:300]}")
            if tally.failed_sequences > failed_before:
                failing.append(taken[0])
            so_far = f"{tally.failed_sequences} failed, {tally.wrong_targets} wrong (org, user) so far"
            print(f"{prefix}seed {taken[0]}: {tally.sequences} sequences, {tally.steps} steps, {so_far}", flush=True)
    TIMINGS.seconds["pipe start"] -= TIMINGS.seconds.get("batches (all of a sequence's time)", 0.0)
    print(f"{prefix}where the time went ({tally.sequences} sequences):\n{TIMINGS.table(tally.sequences)}", flush=True)
    found = Timings(dict(TIMINGS.seconds), dict(TIMINGS.calls))
    return Counted(replace(tally, shortest=dict(tally.shortest)), seeds, failing, found)


def merged(counts: list[Counted]) -> tuple[Tally, list[int], list[int]]:
    """One tally over every pipe's; the seeds run and the failing ones, in seed order."""
    total = Tally()
    for found in (c.tally for c in counts):
        for name in ("sequences", "steps", "failed_sequences", "wrong_targets", "reconciles", "lost_events",
                     "restarts", "wrong_answers", "wrong_rows", "wrong_notifications"):  # fmt: skip
            setattr(total, name, getattr(total, name) + getattr(found, name))
        total.broken += found.broken
        for kind, report in found.shortest.items():
            if kind not in total.shortest or len(report) < len(total.shortest[kind]):
                total.shortest[kind] = report
    return total, sorted(s for c in counts for s in c.seeds), sorted(s for c in counts for s in c.failing)


def seed_list(seeds: list[int]) -> str:
    """Consecutive seeds as a range: "7001-7100 (100 batches)"; otherwise each one."""
    if seeds and seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}-{seeds[-1]} ({len(seeds)} batches)"
    return ", ".join(map(str, seeds))


def _shrink(pipe: ModelPipe, seed: int, steps: int) -> str:
    try:
        run_sequences(pipe, model_settings(BATCH, steps, shrink=True), seed)
    except (AssertionError, Flaky) as exc:
        print(f"\n-- seed {seed}, shrunk:\n{shrunk(exc)}\n")
        return f"seed {seed}: {shrunk(exc)}"
    return ""


def shrunk(exc: BaseException) -> str:
    """The failure's own report; a flaky one (it did not fail again on replay: a race) says so."""
    if isinstance(exc, BaseExceptionGroup):
        inner = "\n".join(shrunk(e) for e in exc.exceptions)
        return f"(flaky on replay, as races are) {inner}"
    return str(exc)


def _result(tally: Tally, seeds: list[int], failures: list[str], seconds: float, command: str, pipes: int) -> Result:
    result = Result("model", "Access model (stateful property test)", command)
    result.figures.update({
        "sequences run": tally.sequences, "steps": tally.steps, "seeds": seed_list(seeds),
        "failed sequences": tally.failed_sequences, "wrong (org, user) seen": tally.wrong_targets,
        "wrong read API answers seen": tally.wrong_answers, "wrong table rows seen": tally.wrong_rows,
        "wrong last notifications seen": tally.wrong_notifications,
        "reconciles after lost events or withdrawn scopes": tally.reconciles, "events lost": tally.lost_events,
        "worker restarts": tally.restarts, "pipes side by side": pipes, "minutes": round(seconds / 60, 1),
        "sequences per minute": round(tally.sequences / max(seconds / 60, 1e-9), 1),
        "broken batches": tally.broken,
        "shrunk failures": [f.replace("\n", " / ") for f in failures],
        "shortest failing sequence per kind of wrong": {k: v.replace("\n", " / ") for k, v in tally.shortest.items()},
    })  # fmt: skip
    result.target(
        "every (org, user) holds its covering customers' roles; API, table and notifications agree",
        not tally.failed_sequences and not tally.broken,
    )
    return result
