"""The release is one figure, pyproject's, shown by `rolesync --version` and `rolesync status` (text and JSON);
the /healthz routes are checked in tests/api/test_api.py and tests/ingest/test_http.py."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from common.infra.version import release
from tests.ops.conftest import run_cli

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_release_is_pyprojects_version() -> None:
    assert release() == tomllib.loads(PYPROJECT.read_text())["project"]["version"]


def test_rolesync_version_prints_the_release() -> None:
    shown = run_cli({}, "--version")
    assert (shown.exit_code, shown.output) == (0, f"rolesync {release()}\n")


def test_status_shows_the_release_in_text_and_json(redis_url: str) -> None:
    assert f"rolesync {release()}" in run_cli({"REDIS_URL": redis_url}, "status").output
    assert json.loads(run_cli({"REDIS_URL": redis_url}, "status", "--json").output)["version"] == release()
