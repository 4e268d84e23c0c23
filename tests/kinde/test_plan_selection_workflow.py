"""The Kinde workflow we ship (kinde/), run by node's own test runner against the stub of Kinde's runtime.

The node tests (kinde/test/planSelectionWorkflow.test.mjs) call a stub rolesync endpoint over real HTTP:
allow, deny with reasons, endpoint down, bad secret, 5xx, slow. Node runs the .ts itself where it can strip
types (node >= 22.6); older nodes get the same file with its types blanked out (tests/kinde/strip_types.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.kinde.strip_types import strip_types

ROOT = Path(__file__).resolve().parents[2]
KINDE = ROOT / "kinde"
WORKFLOW = KINDE / "kindeSrc" / "environment" / "workflows" / "planSelectionWorkflow.ts"
NODE_TESTS = KINDE / "test" / "planSelectionWorkflow.test.mjs"
EXPECTED_TESTS = 9


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the shipped Kinde workflow's tests need node >= 20.6")
    return node


def _strips_types(node: str) -> bool:
    probe = subprocess.run([node, "--experimental-strip-types", "-e", ""], capture_output=True, timeout=30)
    return probe.returncode == 0


def _module_and_flags(node: str, tmp_path: Path) -> tuple[Path, list[str]]:
    if _strips_types(node):
        return WORKFLOW, ["--experimental-strip-types", "--no-warnings"]
    plain = tmp_path / "planSelectionWorkflow.mjs"
    plain.write_text(strip_types(WORKFLOW.read_text()))
    return plain, []


@pytest.mark.integration  # runs node
def test_the_shipped_workflow_passes_its_node_tests(tmp_path: Path) -> None:
    node = _node()
    module, flags = _module_and_flags(node, tmp_path)
    argv = [node, *flags, "--import", "./test/register.mjs", "--test", "--test-reporter=tap", str(NODE_TESTS)]
    env = {**os.environ, "WORKFLOW_MODULE": str(module)}
    run = subprocess.run(argv, cwd=KINDE, env=env, capture_output=True, text=True, timeout=120)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    assert re.search(rf"^# pass {EXPECTED_TESTS}$", report, re.MULTILINE), report
    assert re.search(r"^# fail 0$", report, re.MULTILINE), report


def test_kinde_json_points_kinde_at_the_workflow() -> None:
    config = json.loads((KINDE / "kinde.json").read_text())
    assert config == {"rootDir": "kindeSrc", "version": "2024-12-09"}
    assert (KINDE / config["rootDir"] / "environment" / "workflows" / WORKFLOW.name).is_file()
