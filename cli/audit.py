"""`rolesync audit`: on-call's recent actions, newest first: who, what, to which customers, and why."""

from __future__ import annotations

import json
import time

import click

from cli.exits import oncall_command, settings_for


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000), help="How many, newest first.")
@oncall_command
def audit(as_json: bool, limit: int) -> None:
    """On-call's recent state changes (customers link/unlink/paid, dlq replay/purge, reconcile, mapping apply)."""
    from ops.stores import open_audit, open_stores

    entries = open_audit(open_stores(settings_for("REDIS_URL"))).recent(limit)
    if as_json:
        click.echo(json.dumps({"entries": entries}, indent=2, sort_keys=True))
        return
    if not entries:
        click.echo("No on-call action recorded yet.")
        return
    for item in entries:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(item["at"]))
        who = ", ".join(item.get("customers") or []) or "-"
        more = item.get("customer_count", 0) - len(item.get("customers") or [])
        click.echo(f"{when}Z  {item['action']:<16} by {item['by']}: {item['reason']}  (customers: {who}"
                   f"{f' and {more} more' if more > 0 else ''})")  # fmt: skip
