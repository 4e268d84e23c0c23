"""Suite: the access model (chaos/model_machine.py) over many sequences against one real pipe.

`python -m chaos model [--sequences N] [--seed S]` runs N sequences in batches, each batch a
Hypothesis run with its own seed (`seed`, `seed + 1`, ...) in which a failing sequence is counted,
not raised, so every sequence runs and every wrong (org, user) is counted. Then the first seeds run
again raising, and Hypothesis shrinks their first failure to the step list that reproduces it.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from hypothesis import HealthCheck, Phase, settings
from hypothesis import seed as use_seed
from hypothesis.errors import Flaky
from hypothesis.stateful import run_state_machine_as_test

from chaos.figures import Result
from chaos.model_machine import AccessModel, Tally
from chaos.model_pipe import ModelPipe, model_pipe

SEQUENCES, STEPS, BATCH, SHRINKS = 2000, 20, 100, 1
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


def run(log_dir: Path, *, seed: int, command: str, sequences: int = SEQUENCES, steps: int = STEPS,
        batch: int = BATCH, shrinks: int = SHRINKS) -> Result:  # fmt: skip
    """Count: every sequence runs and is checked, failing or not. Then shrink: up to `shrinks` seeds run
    again until their first failure, which Hypothesis shrinks."""
    AccessModel.tally = tally = Tally()
    seeds: list[int] = []
    started = time.monotonic()
    with model_pipe(log_dir) as pipe:
        while tally.sequences < sequences:
            seeds.append(seed + len(seeds))
            try:
                run_sequences(pipe, model_settings(min(batch, sequences - tally.sequences), steps, shrink=False),
                              seeds[-1], raising=False)  # fmt: skip
            except Exception as exc:  # a broken sequence (not a wrong role) is a finding too; the next seed goes on
                print(f"seed {seeds[-1]} broke: {shrunk(exc)[:2000]}", flush=True)
                tally.broken.append(f"seed {seeds[-1]}: {str(exc).splitlines()[0][:300]}")
            print(f"seed {seeds[-1]}: {tally.sequences} sequences, {tally.failed_sequences} failed so far", flush=True)
        counted = replace(tally, shortest=dict(tally.shortest))
        failures = [
            found for s in seeds[: shrinks if tally.failed_sequences else 0] if (found := _shrink(pipe, s, steps))
        ]
    return _result(counted, seeds, failures, time.monotonic() - started, command)


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


def _result(tally: Tally, seeds: list[int], failures: list[str], seconds: float, command: str) -> Result:
    result = Result("model", "Access model (stateful property test)", command)
    result.figures.update({
        "sequences run": tally.sequences, "steps": tally.steps, "seeds": seeds,
        "failed sequences": tally.failed_sequences, "wrong (org, user) seen": tally.wrong_targets,
        "wrong read API answers seen": tally.wrong_answers, "wrong table rows seen": tally.wrong_rows,
        "wrong last notifications seen": tally.wrong_notifications,
        "reconciles after lost events or withdrawn scopes": tally.reconciles, "events lost": tally.lost_events,
        "worker restarts": tally.restarts, "minutes": round(seconds / 60, 1),
        "broken batches": tally.broken,
        "shrunk failures": [f.replace("\n", " / ") for f in failures],
        "shortest failing sequence per kind of wrong": {k: v.replace("\n", " / ") for k, v in tally.shortest.items()},
    })  # fmt: skip
    result.target(
        "every (org, user) holds its covering customers' roles; API, table and notifications agree",
        not tally.failed_sequences and not tally.broken,
    )
    return result
