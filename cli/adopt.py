"""`rolesync adopt`: list (the default) or keep as hand grants the managed roles no plan grants, from shadow mode
or a reconcile dry run."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cli.exits import fail, oncall_command, settings_for
from cli.operator import operator_options
from common.settings import Settings

if TYPE_CHECKING:
    from common.entitlements.shadow_writes import ShadowWrite
    from ops.adopt import Adoption


SOURCES = ("shadow", "reconcile")
KINDE = ("REDIS_URL", "KINDE_DOMAIN", "KINDE_CLIENT_ID", "KINDE_CLIENT_SECRET")


@click.command()
@click.option("--dry-run/--grant", "dry_run", default=True, show_default=True,
              help="List only (the default), or give each user the roles it would lose as a hand grant.")  # fmt: skip
@click.option("--from", "source", type=click.Choice(SOURCES), default="shadow", show_default=True,
              help="shadow: what the last shadow passes recorded; reconcile: a reconcile dry run made now, in this "
                   "process (before the workers start; nothing is written).")  # fmt: skip
@click.option("--role", "roles", multiple=True, help="Only these roles (repeat); default: every managed role.")
@click.option("--until", default="", help="With --grant: when the grants end by themselves (2027-03-01).")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), default=Path("rolesync-adopt.csv"),
              show_default=True, help="Where to write one row per (user, role) for review.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@operator_options(reason_required=False)
@oncall_command
def adopt(dry_run: bool, source: str, roles: tuple[str, ...], until: str, csv_path: Path, as_json: bool, by: str,
          reason: str | None) -> None:  # fmt: skip
    """Every managed role users hold today that no plan grants, as the last shadow passes saw it (run in
    ROLESYNC_MODE=shadow and `rolesync reconcile` first) or, with --from reconcile, as a reconcile dry run
    sees it now: listed, or with --grant --reason kept as hand grants, so that going live removes only what
    someone chose to let go. Counts per role; writes a CSV."""
    from common.entitlements.grant_recipients import AnyRecipient
    from common.entitlements.manual_grants import parse_until
    from ops import adopt as ops_adopt
    from ops.grants import open_changes

    if not dry_run and not (reason or "").strip():
        fail('say why with --reason (e.g. "adopted 2026-12"): it goes on every grant and the audit trail')
    ends = parse_until(until) if until else None
    settings = settings_for(*(KINDE if source == "reconcile" else KINDE[:1]), writes=True)
    writes, unchecked = _writes(settings, source)
    found = ops_adopt.adoptions(writes, frozenset(roles) if roles else None)
    if not dry_run:
        changes = open_changes(settings, AnyRecipient())  # its users are those the passes just read from Kinde
        found = ops_adopt.grant_all(changes, found, reason=(reason or "").strip(), by=by, until=ends)
    ops_adopt.write_csv(csv_path, found, granted=not dry_run)
    _report(found, dry_run, csv_path, as_json, unchecked)
    if unchecked:
        sys.exit(1)


def _writes(settings: Settings, source: str) -> tuple[list[ShadowWrite], dict[str, str]]:
    """The would-be writes, and the customers the dry run could not check (customer id -> why)."""
    from common.entitlements.shadow_writes import RedisShadowLog
    from common.infra.connections import redis_client

    if source == "shadow":
        return RedisShadowLog(redis_client(settings)).all(), {}
    from ops.adopt import dry_run_writes
    from ops.reconcile import dry_run_deps

    writes, previews = dry_run_writes(dry_run_deps(settings))
    return writes, {p.customer_id: p.error for p in previews if p.error}


def _report(found: list[Adoption], dry_run: bool, csv_path: Path, as_json: bool, unchecked: dict[str, str]) -> None:
    from ops.adopt import per_role

    counts = per_role(found)
    if as_json:
        click.echo(json.dumps({"granted": not dry_run, "targets": len(found), "per_role": counts,
                               "csv": str(csv_path), "unchecked": unchecked}, indent=2, sort_keys=True))  # fmt: skip
    else:
        verb = "kept as hand grants" if not dry_run else "held today that no plan grants (going live removes them)"
        click.echo(f"{len(found)} user(s), roles {verb}:")
        for role, count in counts.items():
            click.echo(f"  {role}: {count}")
        click.echo(f"CSV for review: {csv_path}" + ("" if not dry_run else "; keep them with --grant --reason …"))
    for customer_id, error in sorted(unchecked.items()):
        click.echo(f"rolesync: customer {customer_id} could not be checked ({error}): run again", err=True)
