"""`rolesync db migrate`: thin click command over ops/db.py (the optional Postgres entitlements table)."""

from __future__ import annotations

import click

from cli.exits import oncall_command, settings_for
from cli.help import WholeHelpGroup


@click.group(cls=WholeHelpGroup)
def db() -> None:
    """The optional Postgres entitlements table (ROLESYNC_POSTGRES_URL)."""


@db.command()
@oncall_command
def migrate() -> None:
    """Create or update the table's schema (idempotent); run before workers get ROLESYNC_POSTGRES_URL."""
    from ops.db import migrate as run_migrate

    settings = settings_for("ROLESYNC_POSTGRES_URL")
    done = run_migrate(settings)
    applied = ", ".join(done.applied) or "none (the schema is up to date)"
    click.echo(f"migrations applied: {applied}")
    if done.generation is not None:
        click.echo(f"table generation counter in Redis: {done.generation}")
