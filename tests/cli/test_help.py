"""`rolesync --help`: commands grouped by who uses them, each one-liner whole (in-process, click's runner)."""

from __future__ import annotations

import re

import click
from click.testing import CliRunner

from cli.main import RolesyncGroup, cli

NARROW = {"COLUMNS": "80"}  # the width at which click used to cut one-liners mid-phrase


def sections(text: str) -> dict[str, list[str]]:
    """Each `Title:` section of the help, with the command names it lists (wrapped lines left out)."""
    found: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if re.fullmatch(r"[A-Z][\w -]*:", line):
            current = found.setdefault(line[:-1], [])
        elif current is not None and re.match(r"  \S", line):
            current.append(line.split()[0])
    return found


def help_of(*args: str) -> str:
    result = CliRunner().invoke(cli, [*args, "--help"], env=NARROW, terminal_width=80)
    assert result.exit_code == 0, result.output
    return result.output


def test_top_level_help_groups_commands_by_who_uses_them_each_once() -> None:
    found = sections(help_of())
    for title, names in RolesyncGroup.sections:
        assert found[title] == list(names), title
    listed = [name for title, names in found.items() if title not in ("Options", "Usage") for name in names]
    assert sorted(listed) == sorted(cli.commands)  # every command listed, none twice
    assert "Other commands" not in found
    assert found["Run the service"] == ["ingest", "worker", "api"]


def test_no_one_liner_is_cut_short() -> None:
    groups = [((), cli)] + [((name,), cmd) for name, cmd in cli.commands.items() if isinstance(cmd, click.Group)]
    for path, group in groups:
        text = "\n".join(line for line in help_of(*path).splitlines() if not line.startswith("Usage:"))
        assert "..." not in text, (path, text)
        assert "…" not in text, (path, text)
        for name, command in group.commands.items():
            whole = "".join(command.get_short_help_str(limit=10**6).split())
            assert whole in "".join(text.split()), (path, name)  # whole, if wrapped (at spaces or hyphens)
