"""Production entry points refuse to start without their settings: exit 2, one line, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration  # each command runs as its own process

CLEAN = {k: v for k, v in os.environ.items() if not k.startswith(("KINDE_", "REDIS_", "ROLESYNC_"))}


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], env={**CLEAN, **env}, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("command", "env", "missing"),
    [
        (["ingest"], {}, "REDIS_URL"),
        (["ingest"], {"REDIS_URL": "redis://127.0.0.1:1"}, "KINDE_DOMAIN"),
        (["worker"], {}, "REDIS_URL"),
        (["worker"], {"REDIS_URL": "redis://x", "KINDE_DOMAIN": "https://a.kinde.com"}, "KINDE_CLIENT_ID"),
    ],
)
def test_missing_variable_exits_2_naming_it(command: list[str], env: dict[str, str], missing: str) -> None:
    """The message names the variable; stderr is one line and carries no traceback."""
    result = run(*command, **env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert missing in lines[0]
    assert "Traceback" not in result.stderr


def test_malformed_setting_exits_2_without_traceback() -> None:
    """A bad value (domain without scheme) is a user mistake: exit 2, one line."""
    result = run("ingest", REDIS_URL="redis://x", KINDE_DOMAIN="acme.kinde.com")
    assert result.returncode == 2
    assert "scheme" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"KINDE_DOMAIN": "http://127.0.0.1:8700"}, "KINDE_DOMAIN must be https"),
        ({"KINDE_DOMAIN": "https://evil.example"}, "ROLESYNC_KINDE_CUSTOM_DOMAINS"),
    ],
)
def test_an_unsafe_url_exits_2_with_one_line_naming_the_fix(env: dict[str, str], named: str) -> None:
    result = run("ingest", REDIS_URL="redis://127.0.0.1:1", **env)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert named in line
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [[], ["ingest"], ["worker"], ["sandbox"], ["demo"]])
def test_every_command_has_help(command: list[str]) -> None:
    """`--help` works for the group and each command."""
    result = run(*command, "--help")
    assert result.returncode == 0
    assert "Usage:" in result.stdout
