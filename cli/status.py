"""`rolesync status`: the system at a glance; exit 1 when something needs a human."""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING

import click
from rich.table import Table

from cli.exits import console, oncall_command, settings_for
from common.infra.durations import format_duration

if TYPE_CHECKING:  # imported lazily at run time, like every component of the CLI
    from common.infra.data_loss import DataLoss
    from ops.status import Status


@click.command(short_help="The system at a glance: queues, dead letters, workers, the mapping, lag, 429s.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.option("--health", is_flag=True, help="Container healthcheck: exit 0 only if a worker on this host is alive.")
@oncall_command
def status(as_json: bool, health: bool) -> None:
    """Queues, in-flight and delayed work, dead letters (and the scopes they wait for), workers, last reconcile,
    the plans.toml mapping (changed, held, sweep progress), the Postgres table's lag, 429s, token expiry."""
    from ops import status as ops_status
    from ops.stores import open_stores

    settings = settings_for("REDIS_URL")
    stores = open_stores(settings)
    if health:
        alive = ops_status.this_host_alive(stores, settings)
        click.echo("worker alive on this host" if alive else "no worker alive on this host")
        sys.exit(0 if alive else 1)
    found = ops_status.gather(stores, settings)
    if as_json:
        click.echo(json.dumps(found.as_dict(), sort_keys=True))
    else:
        _print(found)
    sys.exit(1 if found.problems else 0)


def _print(found: Status) -> None:
    out = console()
    out.print(f"rolesync {found.version}", markup=False)
    stamped = found.layout if found.layout is not None else "not stamped"
    out.print(f"Redis layout: {stamped} (this release writes {found.layout_release})", markup=False)
    out.print(_queues(found))
    dead = ", ".join(f"{reason} {count}" for reason, count in found.dead_letters.items()) or "none"
    out.print(f"dead letters: {dead}", markup=False)
    for scope, count in found.waiting_on_scopes.items():
        out.print(f"  waiting for scope {scope}: {count} (replayed by themselves once it is granted)", markup=False)
    workers = ", ".join(w.id for w in found.workers) or "none"
    out.print(f"workers alive: {len(found.workers)} ({workers})", markup=False)
    shadowed = " (no role is written to Kinde)" if found.mode == "shadow" else ""
    out.print(f"mode: {found.mode}{shadowed}", markup=False)
    out.print(f"hand grants: {found.hand_grants} ({found.hand_grants_ending_7d} ending within 7 days: "
              "rolesync grants list)", markup=False)  # fmt: skip
    out.print(f"last reconcile: {_reconcile(found.last_reconcile)}", markup=False)
    if found.mapping:
        out.print(f"plans mapping: {found.mapping.summary}", markup=False)
    if found.entitlements_table:
        out.print(f"entitlements table: {_table_lag(found)}", markup=False)
    if found.data_loss and not found.data_loss.healing:
        out.print(f"Redis data last lost: {_healed(found.data_loss)}", markup=False)
    out.print(f"Kinde 429s in the last 5 min: {found.kinde_429s_5m}")
    expiry = found.token_expires_in_s
    out.print(f"M2M token expires in: {format_duration(expiry) if expiry is not None else 'no token cached'}")
    for warning in found.warnings:
        out.print(f"[bold yellow]warning:[/bold yellow] {warning}")
    for problem in found.problems:
        out.print(f"[bold red]needs a human:[/bold red] {problem}")
    if not found.problems:
        out.print("[green]all well[/green]")


def _queues(found: Status) -> Table:
    table = Table(title="Queues", title_justify="left")
    for name in ("queue", "waiting", "oldest", "in flight", "delayed"):
        table.add_column(name, justify="left" if name == "queue" else "right")
    for q in found.queues:
        oldest = format_duration(q.oldest_age_s) if q.oldest_age_s is not None else "-"
        table.add_row(q.name, str(q.waiting), oldest, str(q.in_flight), str(q.delayed))
    return table


def _healed(loss: DataLoss) -> str:
    took = format_duration((loss.healed_at or loss.noticed_at) - loss.noticed_at)
    return f"{format_duration(time.time() - loss.noticed_at)} ago, healed in {took} ({loss.customers} customers)"


def _table_lag(found: Status) -> str:
    lag = found.entitlements_table
    if lag is None or not lag.pending:
        return "up to date"
    oldest = format_duration(lag.oldest_s) if lag.oldest_s is not None else "-"
    return f"{lag.pending} target(s) pending, oldest {oldest}"


def _reconcile(last: dict[str, object] | None) -> str:
    if not last:
        return "never"
    ago = format_duration(time.time() - float(str(last.get("finished_at") or 0)))
    return (f"{ago} ago ({last.get('source')}): checked {last.get('checked')}, drift {last.get('drift')}, "
            f"fixed {last.get('fixed')}, failed {last.get('failed')}, pending {last.get('pending')}")  # fmt: skip
