"""`rolesync sandbox` says at start how to use it: credentials, the env to export, its control routes (issue 22)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox import control
from sandbox.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from tests.sandbox_fixture import running_sandbox

pytestmark = pytest.mark.integration  # a `rolesync sandbox` process


def test_sandbox_prints_credentials_env_and_control_routes_first(tmp_path: Path) -> None:
    with running_sandbox(tmp_path, extra_args=["--banner"]) as sandbox:  # the fixture's --no-banner, overridden
        output = sandbox.proc.output()
    lines = output.splitlines()
    assert lines[0].startswith(f"rolesync sandbox on {sandbox.url}"), lines[:3]
    head = "\n".join(lines[: 15 + len(control.routes)])  # the banner comes before any log line
    assert DEFAULT_CLIENT_ID in head
    assert DEFAULT_CLIENT_SECRET in head
    for line in (
        f"export KINDE_DOMAIN={sandbox.url}",
        f"export KINDE_CLIENT_ID={DEFAULT_CLIENT_ID}",
        f"export KINDE_CLIENT_SECRET={DEFAULT_CLIENT_SECRET}",
        "export ROLESYNC_INSECURE_LOCAL=1",
    ):
        assert line in head, line
    for route in control.routes:
        assert f"{sandbox.url}{route.path}" in head, route.path


def test_no_banner_keeps_every_credential_out_of_a_launchers_logs(tmp_path: Path) -> None:
    """Launchers that keep logs (launch/pipe.py, the tests) pass --no-banner: the chaos secrets grep reads those."""
    with running_sandbox(tmp_path) as sandbox:
        output = sandbox.proc.output()
    assert output.splitlines()[0].startswith("{"), output[:200]
    assert DEFAULT_CLIENT_SECRET not in output
