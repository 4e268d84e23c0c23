"""`rolesync customers link|show|paid|unlink|history`: thin click commands over ops/customers.py and the timeline."""

from __future__ import annotations

import json
import time

import click

from cli.exits import console, oncall_command, settings_for
from cli.help import WholeHelpGroup
from cli.operator import confirmed, operator_options
from common.infra.durations import format_duration

KINDE = ("REDIS_URL", "KINDE_DOMAIN", "KINDE_CLIENT_ID", "KINDE_CLIENT_SECRET")


@click.group(cls=WholeHelpGroup)
def customers() -> None:
    """Billing customer → Kinde user (B2C) or organization (B2B) links."""


@customers.command()
@click.argument("customer_id")
@click.argument("user_id", required=False)
@click.option("--org", "org_code", help="Org code: with USER_ID, the org the user's roles go to; alone, a B2B link.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (scripts).")
@operator_options()
@oncall_command
def link(customer_id: str, user_id: str | None, org_code: str | None, yes: bool, by: str, reason: str) -> None:
    """Link CUSTOMER_ID to USER_ID (B2C) or to --org ORG (B2B); moves its roles and replays its parked events.

    Looks the user or org up in Kinde first and shows what moves, then asks (unless --yes)."""
    import httpx

    from ops import actions
    from ops import customers as ops_customers
    from ops.audit import Actor
    from ops.stores import open_stores
    from worker.entrypoints.bootstrap import build_kinde
    from worker.runtime.broker import build_broker

    actor, settings = Actor.of(by, reason), settings_for(*KINDE, writes=True)
    stores = open_stores(settings)
    with httpx.Client(timeout=settings.kinde_http_timeout_s) as http:
        preview = ops_customers.preview_link(stores, build_kinde(settings, stores.redis, http), customer_id, user_id,
                                             org_code)  # fmt: skip
    for line in preview.lines():
        click.echo(line)
    if not confirmed(f"Link customer {customer_id} to {preview.target}?", yes=yes, nothing_done="nothing linked"):
        click.echo("Nothing linked.")
        return
    change = actions.link_customer(stores, build_broker(settings), actor, customer_id, user_id, org_code)
    new = ops_customers.describe(change.new)
    click.echo(f"Linked customer {customer_id} to {new}; replayed {change.replayed} parked event(s); "
               "a converge pass is queued (check: rolesync customers show).")  # fmt: skip


@customers.command()
@click.argument("customer_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@oncall_command
def show(customer_id: str, as_json: bool) -> None:
    """Show a customer's link, where it came from, its last pass and desired roles."""
    from ops import customers as ops_customers
    from ops.stores import open_stores

    view = ops_customers.show(open_stores(settings_for("REDIS_URL")), customer_id).as_dict()
    if as_json:
        click.echo(json.dumps(view, indent=2, sort_keys=True))
        return
    out, now, found = console(), time.time(), view["link"]
    out.print(f"[bold]{customer_id}[/bold]")
    if found:
        who = f"user {found['user_id']}" if found["kind"] == "user" else "every member of"
        out.print(f"link: {who} org {found['org_code'] or '(default)'}; learned from {found['source']} "
                  f"{format_duration(now - found['learned_at'])} ago")  # fmt: skip
    else:
        out.print("link: none (events for it are parked as customer_unresolved)")
    converged = view["last_converged_at"]
    out.print(f"last converged: {format_duration(now - converged) + ' ago' if converged else 'never'}")
    out.print(f"desired roles: {', '.join(view['desired_roles']) or '(none)'}")
    if view["last_error"]:
        out.print(f"last error: {view['last_error_reason']}: {view['last_error']}", markup=False)
    out.print(f"dead letters: {len(view['dead_letters'])} (parked: {view['parked_events']})")
    if view["payment"]:
        paid = view["payment"]
        out.print(f"payment: {paid['standing']}, as of an event {format_duration(now - paid['at'])} ago")


@customers.command()
@click.argument("customer_id")
@operator_options()
@oncall_command
def paid(customer_id: str, by: str, reason: str) -> None:
    """Record CUSTOMER_ID's payment as gone through (a lost payment_succeeded) and re-converge it now."""
    from ops import actions
    from ops.audit import Actor
    from ops.stores import open_stores
    from worker.runtime.broker import build_broker

    actor, settings = Actor.of(by, reason), settings_for("REDIS_URL", writes=True)
    stores = open_stores(settings)
    actions.mark_paid(stores, build_broker(settings), actor, customer_id, time.time())
    click.echo(f"Recorded customer {customer_id} as paid; a converge pass is queued (check: rolesync customers show).")


@customers.command()
@click.argument("customer_id")
@operator_options()
@oncall_command
def unlink(customer_id: str, by: str, reason: str) -> None:
    """Forget CUSTOMER_ID's link; its roles stay until a pass converges its old place without it."""
    from ops import actions
    from ops.audit import Actor
    from ops.stores import open_stores

    actor = Actor.of(by, reason)
    removed = actions.unlink_customer(open_stores(settings_for("REDIS_URL", writes=True)), actor, customer_id)
    target = f"user {removed.user_id}" if removed.kind == "user" else f"org {removed.org_code}"
    click.echo(f"Unlinked customer {customer_id} (was {target}).")


@customers.command(
    short_help="What happened to CUSTOMER_ID lately: events, passes, links, dead letters, on-call, guard."
)
@click.argument("customer_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1, 200), help="How many, newest first.")
@oncall_command
def history(customer_id: str, as_json: bool, limit: int) -> None:
    """The last things that happened to CUSTOMER_ID: webhooks, passes, link and payment changes, dead letters,
    on-call's actions, and plan-selection decisions (kept on a list of their own, shown merged)."""
    from ops.customers import timeline
    from ops.stores import open_stores

    entries = timeline(open_stores(settings_for("REDIS_URL")), customer_id, limit)
    if as_json:
        click.echo(json.dumps({"customer_id": customer_id, "entries": entries}, indent=2, sort_keys=True))
        return
    if not entries:
        click.echo(f"Nothing recorded for customer {customer_id} (none yet, or older than ROLESYNC_HISTORY_TTL_S).")
        return
    for item in entries:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(item["at"]))
        rest = ", ".join(f"{k}={v}" for k, v in sorted(item.items()) if k not in ("at", "kind") and v not in ([], ""))
        click.echo(f"{when}Z  {item['kind']:<16} {rest}")
