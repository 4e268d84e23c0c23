"""`rolesync adopt`: list (the default) or keep as hand grants the managed roles no plan grants, from shadow mode."""

from __future__ import annotations

import json
from pathlib import Path

import click

from cli.exits import fail, oncall_command, settings_for
from cli.operator import operator_options


@click.command()
@click.option("--dry-run/--grant", "dry_run", default=True, show_default=True,
              help="List only (the default), or give each user the roles it would lose as a hand grant.")  # fmt: skip
@click.option("--role", "roles", multiple=True, help="Only these roles (repeat); default: every managed role.")
@click.option("--until", default="", help="With --grant: when the grants end by themselves (2027-03-01).")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), default=Path("rolesync-adopt.csv"),
              show_default=True, help="Where to write one row per (user, role) for review.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@operator_options(reason_required=False)
@oncall_command
def adopt(dry_run: bool, roles: tuple[str, ...], until: str, csv_path: Path, as_json: bool, by: str,
          reason: str | None) -> None:  # fmt: skip
    """Every managed role users hold today that no plan grants, as the last shadow passes saw it (run in
    ROLESYNC_MODE=shadow and `rolesync reconcile` first): listed, or with --grant --reason kept as hand
    grants, so that going live removes only what someone chose to let go. Counts per role; writes a CSV."""
    from common.entitlements.manual_grants import parse_until
    from common.entitlements.shadow_writes import RedisShadowLog
    from common.infra.connections import redis_client
    from ops import adopt as ops_adopt
    from ops.grants import open_changes

    if not dry_run and not (reason or "").strip():
        fail('say why with --reason (e.g. "adopted 2026-12"): it goes on every grant and the audit trail')
    ends = parse_until(until) if until else None
    settings = settings_for("REDIS_URL")
    writes = RedisShadowLog(redis_client(settings)).all()
    found = ops_adopt.adoptions(writes, frozenset(roles) if roles else None)
    if not dry_run:
        found = ops_adopt.grant_all(open_changes(settings), found, reason=(reason or "").strip(), by=by, until=ends)
    ops_adopt.write_csv(csv_path, found, granted=not dry_run)
    counts = ops_adopt.per_role(found)
    if as_json:
        click.echo(json.dumps({"granted": not dry_run, "targets": len(found), "per_role": counts,
                               "csv": str(csv_path)}, indent=2, sort_keys=True))  # fmt: skip
        return
    verb = "kept as hand grants" if not dry_run else "held today that no plan grants (going live removes them)"
    click.echo(f"{len(found)} user(s), roles {verb}:")
    for role, count in counts.items():
        click.echo(f"  {role}: {count}")
    click.echo(f"CSV for review: {csv_path}" + ("" if not dry_run else "; keep them with --grant --reason …"))
