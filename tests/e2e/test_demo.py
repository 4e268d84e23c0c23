"""`rolesync demo` runs to the end, shows the role changing, and leaves no process behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def _descendants_alive(marker: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if marker in line and "ps -eo" not in line]


def test_demo_walks_the_plans_and_cleans_up(tmp_path: Path) -> None:
    """The demo exits 0 within its budget, prints each role and snapshot in turn, and every child has exited."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "KINDE_DOMAIN")}
    result = subprocess.run(
        [sys.executable, "-m", "cli", "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    snapshots = [line.split(":", 1)[1].strip() for line in result.stdout.splitlines() if "Snapshot in " in line]
    assert len(snapshots) == 4, result.stdout  # one per step, after its roles
    assert (snapshots[0], snapshots[3]) == ("plans none; features none.", "plans none; features none.")
    assert snapshots[1].startswith("plans plan_subscriber (since ")
    assert snapshots[1].endswith("features projects ≤ 3, seats ≤ 1.")
    assert snapshots[2].startswith("plans plan_client (since ")
    assert snapshots[2].endswith("features projects ≤ unlimited, seats ≤ 5.")
    assert "The on-call console was at http://127.0.0.1:" in result.stdout
    held = [line.split("holds:")[1].strip() for line in result.stdout.splitlines() if "holds:" in line]
    assert held == ["no roles at all.", "role_subscriber.", "role_client.", "no roles at all."]
    # The plan-selection guard step: a refusal with its reason, then the downgrade once a member left.
    guard = result.stdout[result.stdout.index("5. Acme") :]
    assert "Kinde refuses the change: To move to Subscriber you first need to:" in guard, guard
    assert "- reduce org_members to 1 or fewer (now 2)" in guard, guard
    assert guard.index("Cy leaves Acme") < guard.index("Allowed: Acme is on the Subscriber plan.")
    assert _descendants_alive(str(tmp_path)) == []
