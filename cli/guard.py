"""`rolesync guard check|dry-run`: thin click commands over ops/guard.py (the plan-selection guard)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from cli.exits import console, oncall_command, progress_console, settings_for
from cli.help import WholeHelpGroup
from common.infra.durations import format_duration

if TYPE_CHECKING:
    from ops.guard import Check, GuardReader, PlanRefusals

PLAIN_OUTCOMES = ("allowed", "refused")  # the verdict says it all: the outcome is printed only when it adds
PLANS_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group(cls=WholeHelpGroup)
def guard() -> None:
    """The plan-selection guard: what a move to a plan would be told, and why."""


@guard.command()
@click.option("--customer", "customer_id", required=True, help="Billing customer id.")
@click.option("--plan", "plan_code", required=True, help="The plan code the customer would move to.")
@click.option("--plans", "plans_path", type=PLANS_FILE, help="Judge by this plans file instead of ROLESYNC_PLANS.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@oncall_command
def check(customer_id: str, plan_code: str, plans_path: Path | None, as_json: bool) -> None:
    """Print the decision a move of CUSTOMER to PLAN gets now, and what it was decided on (no Kinde call)."""
    from common.plans.mapping import load_plans
    from ops.guard import check as run_check

    settings = settings_for("REDIS_URL")
    found = run_check(_reader(), load_plans(plans_path or settings.plans_path), customer_id, plan_code)
    if as_json:
        click.echo(json.dumps(found.as_dict(), indent=2, sort_keys=True))
        return
    _print_check(found)


@guard.command("dry-run")
@click.option("--plans", "plans_path", type=PLANS_FILE, required=True, help="The plans file with the new limits.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@oncall_command
def dry_run(plans_path: Path, as_json: bool) -> None:
    """List, per plan with limits in --plans, the customers a move to it would be refused for now."""
    from common.plans.mapping import load_plans
    from ops.guard import dry_run as run_dry_run

    plans = load_plans(plans_path)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=progress_console()) as bar:
        task = bar.add_task("Checking customers", total=None)
        found = run_dry_run(_reader(), plans, on_start=lambda n: bar.update(task, total=n),
                            on_customer=lambda _: bar.advance(task))  # fmt: skip
    if as_json:
        click.echo(json.dumps({"plans": [vars(p) for p in found]}, indent=2, sort_keys=True))
        return
    _print_refusals(found)


def _reader() -> GuardReader:
    from common.infra.connections import redis_client
    from ops.guard import GuardReader

    settings = settings_for("REDIS_URL")
    return GuardReader(redis_client(settings), settings.kinde_org_code)


def _print_check(found: Check) -> None:
    out, decision = console(), found.decision
    verdict = "[green]allowed[/green]" if decision.allow else "[red]refused[/red]"
    why = "" if decision.outcome in PLAIN_OUTCOMES else f" ({decision.outcome})"
    out.print(f"[bold]{found.customer_id}[/bold] → {found.plan_code}: {verdict}{why}")
    if decision.outcome == "unknown_plan":
        out.print(f"  plans.toml names no plan {found.plan_code}: every move to it is allowed (a mistyped code?)")
    if decision.message:
        out.print(f"  {decision.message}")
    for reason in decision.reasons:
        out.print(f"  - {reason}")
    for metric, checked in decision.checked.items():
        out.print(f"  {metric}: {_value(metric, checked, found)} (limit {checked['limit']})")
    if found.facts.link is None:
        out.print("  no link: the API cannot place this customer and allows every move (rolesync customers show)")


def _value(metric: str, checked: Any, found: Check) -> str:
    if checked["unreadable"]:
        return f"not counted yet (no member listing cached for org {found.facts.uncounted_org})"
    if checked["value"] is None:
        return "nothing reported"
    seen = found.facts.observed.get(metric)
    age = f", {format_duration(time.time() - seen.at)} ago" if seen and seen.at else ""
    return f"{checked['value']:g} from {checked['source']}{age}"


def _print_refusals(found: list[PlanRefusals]) -> None:
    out = console()
    if not found:
        out.print("No plan in that file has limits: every move would be allowed.")
    for plan in found:
        out.print(f"[bold]{plan.plan}[/bold]: {len(plan.refused)} customer(s) would be refused")
        for row in plan.refused:
            out.print(f"  {row['customer_id']}: " + "; ".join(row["reasons"]))
        for row in plan.unknown:
            out.print(f"  {row['customer_id']}: org_members unknown (org {row['org_code']} never counted)")
