"""`rolesync grants add|list|remove`: managed roles given by hand, with a reason and an optional expiry.

Thin click commands over common/entitlements/hand_grant_changes.py (the read API's `/v1/grants` calls the same).
Not the customers' grant records: see common/entitlements/manual_grants.py.
"""

from __future__ import annotations

import json
import time

import click

from cli.exits import oncall_command, settings_for
from cli.help import WholeHelpGroup
from cli.operator import operator_options
from common.entitlements.manual_grants import HandGrant
from common.infra.durations import format_duration


@click.group(cls=WholeHelpGroup)
def grants() -> None:
    """Managed roles given by hand to a user (partners, staff, extended trials): no plan pays for them."""


@grants.command()
@click.option("--user", "user_id", required=True, help="The Kinde user id (kp_…).")
@click.option("--org", "org_code", default="", help="The org the roles are given in (default: the B2C org).")
@click.option("--role", "roles", required=True, multiple=True, help="A managed role key (repeat for several).")
@click.option("--until", default="", help="When the grant ends by itself: 2027-03-01 (UTC) or an ISO date-time.")
@click.option(
    "--id", "grant_id", default="", help="The grant's id (default: a new hg_… id); an existing one is replaced."
)
@operator_options()
@oncall_command
def add(user_id: str, org_code: str, roles: tuple[str, ...], until: str, grant_id: str, by: str, reason: str) -> None:
    """Give ROLE(s) to a user by hand; a pass converges the user at once, and again when it ends. The user
    must exist in Kinde (and be a member of --org): Kinde is asked first, and nothing is kept otherwise."""
    from common.entitlements.manual_grants import new_grant_id, parse_until
    from ops.grants import open_changes

    ends = parse_until(until) if until else None
    grant = HandGrant(grant_id or new_grant_id(), user_id, org_code, tuple(dict.fromkeys(roles)), reason.strip(),
                      by.strip(), time.time(), ends)  # fmt: skip
    settings = settings_for("REDIS_URL", "KINDE_DOMAIN", "KINDE_CLIENT_ID", "KINDE_CLIENT_SECRET", writes=True)
    old = open_changes(settings).add(grant)  # the user checked with Kinde first
    where = f"in org {org_code}" if org_code else "in the B2C org"
    ending = f"until {_date(ends)}" if ends is not None else "until removed"
    click.echo(f"{'Replaced' if old else 'Added'} hand grant {grant.grant_id}: {', '.join(grant.roles)} to {user_id} "
               f"{where}, {ending}; a pass is queued (check: rolesync grants list).")  # fmt: skip


@grants.command(name="list")
@click.option("--expiring-within", default="", help="Only grants ending within this long, e.g. 7d.")
@click.option("--user", "user_id", default="", help="Only this user's grants.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@oncall_command
def list_grants(expiring_within: str, user_id: str, as_json: bool) -> None:
    """Every hand grant, soonest ending first: who holds what by hand, why, who gave it, until when."""
    from common.infra.durations import parse_duration
    from ops.grants import open_store

    now = time.time()
    before = now + parse_duration(expiring_within) if expiring_within else None
    store = open_store(settings_for("REDIS_URL"))
    found = store.of_user(user_id) if user_id else store.listed(before)
    found = [g for g in found if before is None or (g.until is not None and g.until <= before)]
    if as_json:
        click.echo(json.dumps({"grants": [g.to_dict() for g in found]}, indent=2, sort_keys=True))
        return
    if not found:
        click.echo("No hand grants" + (f" ending within {expiring_within}." if before else "."))
        return
    for g in found:
        ends = f"until {_date(g.until)} ({format_duration(g.until - now)} left)" if g.until is not None else "no end"
        click.echo(f"{g.grant_id}  {g.user_id}  {g.org_code or '(B2C org)'}  {','.join(g.roles)}  {ends}  "
                   f"by {g.by}: {g.reason}")  # fmt: skip


@grants.command()
@click.argument("grant_id")
@operator_options()
@oncall_command
def remove(grant_id: str, by: str, reason: str) -> None:
    """End GRANT_ID now; a pass converges its user (its roles go unless a plan or another grant gives them)."""
    from common.entitlements.grant_recipients import AnyRecipient
    from ops.audit import Actor
    from ops.grants import open_changes

    removed = open_changes(settings_for("REDIS_URL", writes=True), AnyRecipient()).remove(
        grant_id, Actor.of(by, reason)
    )
    click.echo(f"Removed hand grant {grant_id} ({', '.join(removed.roles)} of {removed.user_id}); a pass is queued.")


def _date(when: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(when))
