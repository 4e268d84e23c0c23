"""`rolesync dlq list|show|replay|purge`: thin click commands over ops/dlq.py."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

import click
from rich.progress import track
from rich.table import Table

from cli.exits import console, fail, oncall_command, progress_console, settings_for
from cli.help import WholeHelpGroup
from cli.operator import confirmed, operator_options
from common.infra.deadletters import DeadLetter
from common.infra.durations import format_duration, parse_duration

CUT = 60


@click.group(cls=WholeHelpGroup)
def dlq() -> None:
    """Dead letters: events the worker could not apply, with the reason a human needs."""


@dlq.command("list")
@click.option("--failed", "--reason", "reason", help="Exact reason, or a prefix ending in ':' (e.g. role_not_found:).")
@click.option("--type", "event_type", help="Event type, e.g. customer.plan_changed.")
@click.option("--customer", help="Billing customer id.")
@click.option("--since", help="Only failures since: a duration back (2h, 7d) or a date (2026-11-20).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@oncall_command
def list_(reason: str | None, event_type: str | None, customer: str | None, since: str | None, limit: int,
          as_json: bool) -> None:  # fmt: skip
    """List dead letters, newest failure first, with counts by reason at the top."""
    from ops import dlq as ops_dlq
    from ops.stores import open_stores

    filters = ops_dlq.Filters(reason, event_type, customer, ops_dlq.moment(since, time.time()) if since else None)
    stores = open_stores(settings_for("REDIS_URL"))
    counts, records = stores.dead_letters.count_by_reason(), ops_dlq.select(stores.dead_letters, filters)
    if as_json:
        shown = [asdict(r) for r in records[:limit]]
        click.echo(json.dumps({"counts": counts, "total": len(records), "records": shown}))
        return
    if not records:
        click.echo("No dead letters match." if counts else "No dead letters: nothing to do.")
        return
    out = console()
    out.print(_counts_table(counts))
    out.print(_records_table(records[:limit], time.time()))
    if len(records) > limit:
        out.print(f"Showing {limit} of {len(records)}; use --limit or filters to see more.")


@dlq.command()
@click.argument("record_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@oncall_command
def show(record_id: str, as_json: bool) -> None:
    """Show one dead letter whole: event claims, reason, last error, attempts, times."""
    from ops import dlq as ops_dlq
    from ops.stores import open_stores

    (record,) = ops_dlq.find(open_stores(settings_for("REDIS_URL")).dead_letters, [record_id])
    if as_json:
        click.echo(json.dumps(asdict(record), indent=2, sort_keys=True))
        return
    out, now = console(), time.time()
    out.print(f"[bold]{record.id}[/bold]  reason [bold]{record.reason}[/bold]  attempts {record.attempts}")
    out.print(f"type {record.event_type}  customer {record.customer_id}")
    out.print(f"first failed {_when(record.first_failed_at, now)}, last failed {_when(record.last_failed_at, now)}")
    out.print(f"last error: {record.last_error}", markup=False)
    if record.scope or record.endpoint:
        out.print(f"waits for scope {record.scope} on {record.endpoint} (replayed once it answers)", markup=False)
    out.print("claims:")
    out.print_json(json.dumps(record.claims, sort_keys=True))


@dlq.command()
@click.argument("record_ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Replay every dead letter.")
@click.option("--failed", "failed_reason", help="Replay every dead letter with this reason (or prefix ending in ':').")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation of a bulk replay (--all, --failed).")
@operator_options()
@oncall_command
def replay(record_ids: tuple[str, ...], everything: bool, failed_reason: str | None, yes: bool, by: str,
           reason: str) -> None:  # fmt: skip
    """Re-enqueue dead letters for the worker (it re-reads Kinde, so nothing can regress)."""
    from ops import actions
    from ops import dlq as ops_dlq
    from ops.audit import Actor
    from ops.stores import open_stores
    from worker.runtime.broker import build_broker

    _one_selection(record_ids, everything, failed_reason)
    actor, settings = Actor.of(by, reason), settings_for("REDIS_URL", writes=True)
    stores = open_stores(settings)
    records = _chosen(stores.dead_letters, record_ids, ops_dlq.Filters(reason=failed_reason))
    if not records:
        click.echo("No dead letters match: nothing to replay.")
        return
    bulk = not record_ids
    if bulk and not confirmed(f"Replay {len(records)} dead letter(s)?", yes=yes, nothing_done="nothing replayed"):
        click.echo("Nothing replayed.")
        return
    out = console()

    def shown(chosen: list[DeadLetter]) -> Iterable[DeadLetter]:
        return track(chosen, description="Replaying", console=progress_console()) if len(chosen) > 1 else chosen

    done = actions.replay_dead_letters(stores, build_broker(settings), records, actor,
                                       _selection(record_ids, failed_reason), each=shown)  # fmt: skip
    if done.token_dropped:
        out.print("Dropped the shared M2M token: the next Kinde call fetches one with the newly granted scopes.")
    for line in done.lines:
        out.print(line, markup=False, highlight=False)
    out.print(f"Replayed {len(records)} dead letter(s); watch them with: rolesync status")


@dlq.command()
@click.argument("record_ids", nargs=-1)
@click.option("--older-than", help="Purge dead letters whose last failure is older than this (e.g. 30d).")
@click.option("--failed", "failed_reason", help="Purge dead letters with this reason (or prefix ending in ':').")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@operator_options()
@oncall_command
def purge(record_ids: tuple[str, ...], older_than: str | None, failed_reason: str | None, yes: bool, by: str,
          reason: str) -> None:  # fmt: skip
    """Delete dead letters for good (asks first unless --yes)."""
    from ops import actions
    from ops import dlq as ops_dlq
    from ops.audit import Actor
    from ops.stores import open_stores

    if not (record_ids or older_than or failed_reason) or (record_ids and (older_than or failed_reason)):
        fail("say which: ID…, or --older-than DURATION and/or --failed REASON")
    actor = Actor.of(by, reason)
    before = time.time() - parse_duration(older_than) if older_than else None
    stores = open_stores(settings_for("REDIS_URL", writes=True))
    records = _chosen(stores.dead_letters, record_ids, ops_dlq.Filters(reason=failed_reason, before=before))
    if not records:
        click.echo("No dead letters match: nothing to purge.")
        return
    if not confirmed(f"Purge {len(records)} dead letter(s) for good?", yes=yes, nothing_done="nothing purged"):
        click.echo("Nothing purged.")
        return
    done = actions.purge_dead_letters(stores, records, actor, _selection(record_ids, failed_reason, older_than))
    purged, changed = done.purged, done.changed
    kept = f"; {changed} changed meanwhile and were not purged (see: rolesync dlq list)" if changed else ""
    click.echo(f"Purged {purged} dead letter(s){kept}.")


def _one_selection(record_ids: tuple[str, ...], everything: bool, failed_reason: str | None) -> None:
    if sum((bool(record_ids), everything, failed_reason is not None)) != 1:
        fail("say which: ID…, --all, or --failed REASON (exactly one)")


def _selection(record_ids: tuple[str, ...], failed_reason: str | None, older_than: str | None = None) -> str:
    """How the records were chosen, for the audit trail."""
    if record_ids:
        return "ids: " + ", ".join(record_ids[:20]) + (" …" if len(record_ids) > 20 else "")
    chosen = [f"failed {failed_reason}" if failed_reason else "", f"older than {older_than}" if older_than else ""]
    return ", ".join(c for c in chosen if c) or "all"


def _chosen(store: Any, record_ids: tuple[str, ...], filters: Any) -> list[DeadLetter]:
    from ops import dlq as ops_dlq

    return ops_dlq.find(store, record_ids) if record_ids else ops_dlq.select(store, filters)


def _counts_table(counts: dict[str, int]) -> Table:
    table = Table(title="Dead letters by reason", title_justify="left")
    table.add_column("reason")
    table.add_column("count", justify="right")
    for reason, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        table.add_row(reason, str(count))
    return table


def _records_table(records: list[DeadLetter], now: float) -> Table:
    table = Table()
    for name in ("id", "reason", "type", "customer"):
        table.add_column(name, no_wrap=True)  # ids are copied into the next command: never folded
    table.add_column("attempts", justify="right")
    table.add_column("last failed")
    table.add_column("last error", overflow="ellipsis", no_wrap=True, max_width=CUT)
    for r in records:
        table.add_row(r.id, r.reason, r.event_type or "", r.customer_id or "", str(r.attempts),
                      _when(r.last_failed_at, now), _cut(r.last_error))  # fmt: skip
    return table


def _when(at: float, now: float) -> str:
    return f"{format_duration(now - at)} ago"


def _cut(text: str) -> str:
    return text if len(text) <= CUT else text[: CUT - 1] + "…"
