"""Smoke test of `python -m bench load`: the same harness as `make bench-load`, tiny N, a few seconds.

The Python part (ingest under load, the whole pipe's ramp and hold, the docs section) runs
unconditionally. The Express + @kinde/webhooks peer needs node and npm: with them on PATH it is
measured and checked like the rest; without them these tests check instead that the harness says
the peer was skipped (no pytest skip: each test asserts what the harness does on this machine).
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from bench import load
from bench.load_peer import express_peer, node_version
from tests.sandbox_fixture import running_sandbox

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TINY = ["--ingest-duration", "1", "--tokens", "400", "--users", "12", "--start-rate", "2", "--step-s", "3"]
TINY += ["--hold-s", "4", "--drain-s", "30", "--load-processes", "1", "--connections", "4"]
DOC = "# Benchmarks\n\n## Ingest\n\nkept\n\n## Load\n\nplaceholder\n\n## After\n\nkept too\n"


def test_load_bench_runs_the_pipe_and_rewrites_only_its_docs_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = tmp_path / "benchmarks.md"
    docs.write_text(DOC)
    assert load.main([*TINY, "--docs", str(docs)]) == 0
    results, _ = json.JSONDecoder().raw_decode(capsys.readouterr().out)
    ingest, hold = results["comparison"]["ingest"], results["hold"]
    assert ingest["ok"] == ingest["requests"] > 0
    assert hold["changes_with_writes"] == hold["changes"] > 0
    assert hold["webhooks"] >= hold["changes"]
    assert hold["drained_s_after_last_change"] is not None
    assert hold["kinde_calls_per_change"] >= 2  # at least the role POST and DELETE of each change
    assert results["memory"]["after_mb"] > 0
    text = docs.read_text()
    assert "placeholder" not in text
    assert "kept" in text
    assert "kept too" in text  # the sections around ## Load
    assert "webhooks/s" in text
    assert results["command"] in text
    assert "load average" in text
    if node_version() is None:
        assert "skipped" in results["comparison"]["express"]
    else:
        express = results["comparison"]["express"]
        assert express["ok"] == express["requests"] > 0


def test_express_peer_answers_200_for_a_kinde_token_and_401_or_400_otherwise(tmp_path: Path) -> None:
    if node_version() is None:  # the peer cannot start, and says so instead of measuring nothing
        with pytest.raises(FileNotFoundError), express_peer("http://127.0.0.1:9", tmp_path):
            pass
        return
    with running_sandbox(tmp_path) as sandbox, express_peer(sandbox.url, tmp_path) as port:
        url = f"http://127.0.0.1:{port}/webhooks/kinde"
        good = sandbox.client.sign({"type": "customer.plan_assigned", "event_id": "event_1", "data": {}})
        forged = sandbox.client.sign({"type": "customer.plan_assigned"}, kid="aa:bb")
        jwt = {"content-type": "application/jwt"}  # as Kinde sends it
        assert httpx.post(url, content=good, headers=jwt).status_code == 200
        assert httpx.post(url, content=forged, headers=jwt).status_code == 401
        assert httpx.post(url, content=good[:-4] + "AAAA", headers=jwt).status_code == 401
        assert httpx.post(url, content=b"", headers=jwt).status_code == 400
