"""One translation of a RetryableError for every actor (issue 25, item 8): `retried_quietly` in
worker/runtime/durable_retries.py, used by `attempt` (the handlers' actors) and by `notify_app`.

The actors module binds to a configured broker on import, so the two callers are checked in their source here;
their behaviour end to end is in tests/worker/outputs/test_notify_delivery.py and test_retry_budget.py."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from common.errors import PermanentError, RetryableError
from worker.runtime.durable_retries import QuietRetryable, retried_quietly

ROOT = Path(__file__).resolve().parents[3]


def test_a_retryable_error_leaves_as_quiet_retryable_carrying_it() -> None:
    error = RetryableError("the app answered 503", reason="notify_503")
    with pytest.raises(QuietRetryable) as raised, retried_quietly():
        raise error
    assert raised.value.error is error
    assert raised.value.__cause__ is error


def test_a_permanent_error_passes_untranslated() -> None:
    with pytest.raises(PermanentError), retried_quietly():
        raise PermanentError("the app refused it")


def test_only_durable_retries_raises_quiet_retryable() -> None:
    raisers = []
    for path in sorted((ROOT / "worker").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and "QuietRetryable" in ast.unparse(node):
                raisers.append(str(path.relative_to(ROOT)))
    assert raisers == ["worker/runtime/durable_retries.py"]


@pytest.mark.parametrize("actor", ["attempt", "notify_app"])
def test_both_actors_run_their_work_in_the_one_translation(actor: str) -> None:
    tree = ast.parse((ROOT / "worker/runtime/actors.py").read_text())
    function = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == actor)
    withs = [ast.unparse(item.context_expr) for n in ast.walk(function) if isinstance(n, ast.With) for item in n.items]
    assert "retried_quietly()" in withs
