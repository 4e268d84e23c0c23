"""`rolesync reconcile [--dry-run] [--plans FILE] [--customer ID ...] [--apply-mapping]`: thin click command over
ops/reconcile.py and ops/mapping.py."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from cli.exits import console, fail, oncall_command, progress_console, settings_for
from cli.operator import confirmed, operator_options
from common.infra.durations import parse_duration
from common.settings import Settings

if TYPE_CHECKING:
    from ops.audit import Actor
    from ops.reconcile import Preview
    from worker.sweeps.reconcile import Summary, Verdict

KINDE = ("REDIS_URL", "KINDE_DOMAIN", "KINDE_CLIENT_ID", "KINDE_CLIENT_SECRET")


@click.command()
@click.option("--dry-run", is_flag=True, help="Print what would change and what it would cost; write nothing.")
@click.option("--plans", "plans_path", type=click.Path(dir_okay=False, path_type=Path),
              help="With --dry-run: preview this plans file instead of the deployed one.")  # fmt: skip
@click.option("--no-discover", is_flag=True, help="Skip paging Kinde for customers no webhook told us about.")
@click.option("--customer", "customers", multiple=True, metavar="ID",
              help="Only this billing customer (repeatable): fix one account now and see what changed.")  # fmt: skip
@click.option("--apply-mapping", is_flag=True,
              help="Apply the changed plans.toml the workers run and hold (ROLESYNC_MAPPING_CHANGE=hold).")  # fmt: skip
@click.option("--timeout", default="15m", show_default=True, help="How long to wait for the fleet's passes.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.option("--yes", is_flag=True, help="With --apply-mapping: do not ask for confirmation.")
@operator_options(reason_required=False)  # a dry run writes nothing: only the real runs must say why
@oncall_command
def reconcile(dry_run: bool, plans_path: Path | None, no_discover: bool, customers: tuple[str, ...],
              apply_mapping: bool, timeout: str, as_json: bool, yes: bool, by: str,
              reason: str | None) -> None:  # fmt: skip
    """Re-converge every customer from Kinde's state on the worker fleet (repairs lost webhooks)."""
    from ops.audit import Actor

    if plans_path and not dry_run:
        fail("--plans only previews (add --dry-run): workers converge with their own plans file")
    if apply_mapping and (dry_run or customers):
        fail("--apply-mapping sweeps every customer: the dry run of the change is in the workers' start-up log")
    timeout_s = parse_duration(timeout)
    actor = None if dry_run else Actor.of(by, reason)
    settings = settings_for(*KINDE, writes=True)
    only = [c.strip() for c in customers if c.strip()] or None
    if actor is None:
        _dry_run(settings, plans_path, not no_discover, only, as_json)
    elif apply_mapping:
        _apply_mapping(settings, timeout_s, as_json, actor, yes)
    else:
        _sweep(settings, not no_discover, only, timeout_s, as_json, actor)


def _progress() -> Progress:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    return Progress(*columns, console=progress_console())


def _dry_run(settings: Settings, plans_path: Path | None, discover: bool, only: list[str] | None,
             as_json: bool) -> None:  # fmt: skip
    from common.plans.mapping import load_plans
    from ops.reconcile import dry_run, dry_run_deps

    plans = load_plans(plans_path) if plans_path else None
    with _progress() as bar:
        task = bar.add_task("Checking (dry run)", total=None)
        previews = dry_run(
            dry_run_deps(settings), plans, discover=discover, only=only,
            on_start=lambda n: bar.update(task, total=n), on_preview=lambda _: bar.advance(task),
        )  # fmt: skip
    if as_json:
        click.echo(json.dumps({"dry_run": True, "customers": [asdict(p) for p in previews]}))
    else:
        _print_previews(previews)
    sys.exit(1 if any(p.error for p in previews) else 0)


def _print_previews(previews: list[Preview]) -> None:
    out = console()
    for p in previews:
        if p.error:
            out.print(f"{p.customer_id}: would fail: {p.error}", markup=False)
        elif p.drift:
            adds = ", ".join(f"+{key} ({user})" for user, key in p.added)
            removes = ", ".join(f"-{key} ({user})" for user, key in p.removed)
            new = " [not linked yet]" if p.new else ""
            out.print(f"{p.customer_id}{new}: {' '.join(x for x in (adds, removes) if x)}; {p.calls} Kinde calls",
                      markup=False)  # fmt: skip
    drift = sum(p.drift for p in previews)
    failed = sum(bool(p.error) for p in previews)
    calls = sum(p.calls for p in previews)
    out.print(f"Dry run: checked {len(previews)}, drift found {drift}, would fail {failed}; "
              f"a real sweep would cost about {calls} Kinde calls. Nothing was written.")  # fmt: skip


def _sweep(settings: Settings, discover: bool, only: list[str] | None, timeout_s: float, as_json: bool,
           actor: Actor) -> None:  # fmt: skip
    from ops.actions import reconcile

    verdicts: list[Verdict] = []
    with _progress() as bar:
        task = bar.add_task("Discovering" if discover else "Reconciling", total=None)

        def started(n: int) -> None:
            bar.update(task, total=n, description="Reconciling")

        def ended(verdict: Verdict) -> None:
            verdicts.append(verdict)
            bar.advance(task)

        summary = reconcile(settings, actor, only, timeout_s=timeout_s, discover=discover, source="cli",
                            on_start=started, on_verdict=ended)  # fmt: skip
    if as_json:
        customers = {"customers": [asdict(v) for v in verdicts]} if only else {}
        click.echo(json.dumps({**json.loads(summary.to_json()), **customers}, sort_keys=True))
    else:
        _print_verdicts(verdicts if only else [])
        _print_summary(summary)
    sys.exit(1 if summary.failed or summary.pending else 0)


def _apply_mapping(settings: Settings, timeout_s: float, as_json: bool, actor: Actor, yes: bool) -> None:
    from common.plans.fleet_mapping import MappingStore
    from ops.mapping import apply_pending, linked_customers, ready_to_apply
    from ops.stores import audit_over
    from worker.runtime.heartbeat import worker_fresh_s
    from worker.sweeps.reconcile_schedule import build_fleet

    fleet = build_fleet(settings)
    store, fresh_s = MappingStore(fleet.redis), worker_fresh_s(settings)
    pending, count = ready_to_apply(store, fresh_s), linked_customers(fleet.redis)
    question = f"Apply plans.toml mapping {pending.fingerprint} to {count} linked customer(s) now?"
    if not confirmed(question, yes=yes, nothing_done="nothing applied"):
        click.echo("Nothing applied.")
        return
    with _progress() as bar:
        task = bar.add_task("Applying the mapping", total=None)
        summary = apply_pending(
            fleet, store, fresh_s, timeout_s=timeout_s,
            on_start=lambda n: bar.update(task, total=n), on_verdict=lambda _: bar.advance(task),
        )  # fmt: skip
    audit_over(fleet.redis, settings).record("mapping_apply", actor, [], fingerprint=pending.fingerprint,
                                             checked=summary.checked, fixed=summary.fixed)  # fmt: skip
    if as_json:
        click.echo(summary.to_json())
    else:
        _print_summary(summary)
        console().print("The plans.toml mapping the workers run is recorded as applied.")
    sys.exit(1 if summary.failed or summary.pending else 0)


def _print_verdicts(verdicts: list[Verdict]) -> None:
    """Per customer, what the pass changed: for `--customer`, where on-call wants to see the fix."""
    out = console()
    for v in verdicts:
        if v.outcome in ("fixed", "in_step"):
            changes = [f"+{key} ({user})" for user, key in v.added] + [f"-{key} ({user})" for user, key in v.removed]
            out.print(
                f"{v.customer_id}: {', '.join(changes) if changes else 'in step, nothing to change'}", markup=False
            )


def _print_summary(summary: Summary) -> None:
    out = console()
    for customer_id, error in sorted(summary.failures.items()):
        out.print(f"{customer_id}: {error}", markup=False)
    out.print(f"Reconciled: checked {summary.checked} (newly discovered {summary.discovered}), "
              f"drift found {summary.drift}, fixed {summary.fixed}, failed {summary.failed}, "
              f"still retrying {summary.pending}.")  # fmt: skip
