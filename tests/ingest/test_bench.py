"""The ingest benchmark runs end to end (a tiny run; the real figures are in docs/benchmarks.md)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.procs import ROOT

pytestmark = pytest.mark.integration  # the benchmark starts uvicorn processes


def test_the_ingest_benchmark_runs_and_reports_ratios() -> None:
    argv = [sys.executable, "-m", "bench", "ingest", "--duration", "0.3", "--rate-duration", "0.3"]
    argv += ["--rate", "100", "--tokens", "150", "--connections", "2", "--load-processes", "1", "--no-peer"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "c/b = " in done.stdout
    assert "c/d (Express peer) not measured: --no-peer" in done.stdout
    assert 'status\\":\\"queued' in done.stdout  # the real ingest answered "queued", not an error
