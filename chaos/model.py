"""Suite: the access model (chaos/model_machine.py) over many sequences against one real pipe.

`python -m chaos model [--sequences N] [--seed S]` runs N sequences in batches, each batch a
Hypothesis run with its own seed (`seed`, `seed + 1`, ...), so a failing batch is shrunk and
reported and the next batch carries on: the run counts every sequence and every wrong (org, user),
not just the first failure. Each shrunk failure is the step list that reproduces it.
"""

from __future__ import annotations

import time
from pathlib import Path

from hypothesis import HealthCheck, Phase, settings
from hypothesis import seed as use_seed
from hypothesis.errors import Flaky
from hypothesis.stateful import run_state_machine_as_test

from chaos.figures import Result
from chaos.model_machine import AccessModel, Tally
from chaos.model_pipe import ModelPipe, model_pipe

SEQUENCES, STEPS, BATCH = 2000, 20, 100
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


def run_sequences(pipe: ModelPipe, chosen: settings, seed: int | None = None) -> None:
    """One Hypothesis run of the machine; raises the (shrunk, when shrinking) failure."""
    machine = type(f"AccessModelSeed{seed}", (AccessModel,), {"pipe": pipe})
    if seed is not None:
        machine = use_seed(seed)(machine)
    run_state_machine_as_test(machine, settings=chosen)


def run(log_dir: Path, *, seed: int, command: str, sequences: int = SEQUENCES, steps: int = STEPS,
        batch: int = BATCH) -> Result:  # fmt: skip
    AccessModel.tally = tally = Tally()
    seeds: list[int] = []
    failures: list[str] = []
    started = time.monotonic()
    with model_pipe(log_dir) as pipe:
        while tally.sequences < sequences:
            seeds.append(seed + len(seeds))
            before = tally.sequences
            try:
                run_sequences(pipe, model_settings(min(batch, sequences - before), steps, shrink=True), seeds[-1])
            except (AssertionError, Flaky) as exc:
                failures.append(f"seed {seeds[-1]}: {shrunk(exc)}")
                print(f"\n-- seed {seeds[-1]} failed (shrunk):\n{failures[-1]}\n")
            print(f"seed {seeds[-1]}: {tally.sequences - before} sequences, {tally.sequences} so far")
    return _result(tally, seeds, failures, time.monotonic() - started, command)


def shrunk(exc: BaseException) -> str:
    """The failure's own report; a flaky one (it did not fail again on replay: a race) says so."""
    if isinstance(exc, BaseExceptionGroup):
        inner = "\n".join(shrunk(e) for e in exc.exceptions)
        return f"(flaky on replay, as races are) {inner}"
    return str(exc)


def _result(tally: Tally, seeds: list[int], failures: list[str], seconds: float, command: str) -> Result:
    result = Result("model", "Access model (stateful property test)", command)
    result.figures.update({
        "sequences run (incl. shrinking)": tally.sequences, "steps": tally.steps, "seeds": seeds,
        "failed sequences": tally.failed_sequences, "wrong (org, user) seen": tally.wrong_targets,
        "reconciles after lost events or withdrawn scopes": tally.reconciles, "events lost": tally.lost_events,
        "worker restarts": tally.restarts, "minutes": round(seconds / 60, 1),
        "shrunk failures": [f.replace("\n", " / ") for f in failures],
        "shortest failing sequences seen": [f.replace("\n", " / ") for f in tally.shortest_failures],
    })  # fmt: skip
    result.target("every (org, user) holds its covering customers' roles", not failures)
    return result
