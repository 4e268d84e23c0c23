"""The access model's small budget: random sequences against one real pipe, each checked by the oracle.

`make chaos` runs the large budget (`python -m chaos model`); this one is fixed (derandomized) so CI
is reproducible, and does not shrink (a shrink replays sequences for minutes): a failure prints the
step list of the sequence that failed. The fixed regression sequences (chaos/model_regressions.py)
run first, on the same pipe.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chaos.model import model_settings, run_sequences
from chaos.model_pipe import ModelPipe, model_pipe
from chaos.model_regressions import REGRESSIONS, run_regression

pytestmark = [pytest.mark.e2e, pytest.mark.model]
SMALL = model_settings(10, 12, shrink=False, derandomize=True)


@pytest.fixture(scope="module")  # not session: its idle processes would load every later test
def pipe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelPipe]:
    with model_pipe(tmp_path_factory.mktemp("model")) as running:
        yield running


@pytest.mark.parametrize("sequence", list(REGRESSIONS))
def test_a_fixed_regression_sequence_ends_with_every_org_user_right(pipe: ModelPipe, sequence: str) -> None:
    """Each bug the model once caught, replayed deterministically (chaos/model_regressions.py): caught in
    every run, where a random budget reaches it only when draws and timing line up."""
    run_regression(pipe, sequence)


def test_every_org_user_holds_exactly_its_covering_customers_roles(pipe: ModelPipe) -> None:
    run_sequences(pipe, SMALL)
