"""`--help` that lists commands with whole one-liners, and the top level grouped by who uses each command.

click cuts a command's one-liner to the terminal's width with "..."; these groups print each one's
first sentence (or its `short_help`) whole, wrapped onto the next line when long.
"""

from __future__ import annotations

import click

WHOLE = 10**6  # a limit no one-liner reaches: click then keeps the first sentence whole


def one_liner(command: click.Command) -> str:
    return command.get_short_help_str(limit=WHOLE)


class WholeHelpGroup(click.Group):
    """A group whose command list keeps every one-liner whole."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, one_liner(cmd)) for name, cmd in self._visible(ctx, self.list_commands(ctx))]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def _visible(self, ctx: click.Context, names: list[str]) -> list[tuple[str, click.Command]]:
        found = [(name, self.get_command(ctx, name)) for name in names]
        return [(name, cmd) for name, cmd in found if cmd is not None and not cmd.hidden]


class SectionedGroup(WholeHelpGroup):
    """The top level: commands in sections by who uses them, in the order given; any other command last."""

    sections: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        placed = {name for _, names in self.sections for name in names}
        others = tuple(name for name in self.list_commands(ctx) if name not in placed)
        for title, names in (*self.sections, ("Other commands", others)):
            rows = [(name, one_liner(cmd)) for name, cmd in self._visible(ctx, list(names))]
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)
