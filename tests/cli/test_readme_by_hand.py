"""README's "Run it by hand against the sandbox": every `rolesync …` line names a real command with real options."""

from __future__ import annotations

import shlex

import pytest
from click.testing import CliRunner

from cli.main import cli
from tests.procs import ROOT


def _section_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Run it by hand against the sandbox")
    section = text[start : text.index("\n## ", start + 1)]
    commands = []
    for line in section.splitlines():
        if line.startswith("rolesync "):
            argv = shlex.split(line.split("#", 1)[0])[1:]
            commands.append([a.replace("$", "X") for a in argv])
    return commands


COMMANDS = _section_commands()


def test_the_walk_through_starts_every_service() -> None:
    assert {argv[0] for argv in COMMANDS} >= {"sandbox", "ingest", "worker", "api", "guard"}


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(a) for a in COMMANDS])
def test_each_command_and_its_options_exist(argv: list[str]) -> None:
    result = CliRunner().invoke(cli, [*argv, "--help"])
    assert result.exit_code == 0, result.output
