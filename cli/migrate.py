"""`rolesync migrate [--dry-run]`: show, then run, the pending migrations of the Redis layout (common/infra/layout.py).

Every process migrates by itself at start; this command lets on-call see what a new release will change first and
run it before the rollout."""

from __future__ import annotations

import click

from cli.exits import console, oncall_command, settings_for


@click.command(short_help="Show (--dry-run) or run the pending migrations of the Redis layout.")
@click.option("--dry-run", is_flag=True, help="Say what each pending step would change; change nothing.")
@oncall_command
def migrate(dry_run: bool) -> None:
    """Migrate the data in Redis to the layout this release writes, one step at a time, under a lock; a step cut
    short is run again by the next start (docs/upgrading.md, 'The Redis layout')."""
    from common.infra import layout
    from common.infra.connections import redis_client

    client = redis_client(settings_for("REDIS_URL"))
    out = console()
    found = layout.stored(client)
    out.print(f"Redis layout: {found if found is not None else 'not stamped'}; this release: {layout.LAYOUT}",
              markup=False)  # fmt: skip
    steps = layout.dry_run(client) if dry_run else layout.run_pending(client)
    for step in steps:
        out.print(f"layout {step.start} -> {step.start + 1}: {len(step.changes)} change(s)", markup=False)
        for line in step.changes:
            out.print(f"  {line}", markup=False)
    if not steps:
        out.print("nothing to migrate", markup=False)
    elif dry_run:
        out.print("dry run: nothing changed", markup=False)
    else:
        out.print(f"Redis layout is now {layout.stored(client)}", markup=False)
