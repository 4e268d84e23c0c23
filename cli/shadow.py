"""`rolesync shadow report`: where Kinde today differs from what the service would make it, and why."""

from __future__ import annotations

import json

import click

from cli.exits import oncall_command, settings_for
from cli.help import WholeHelpGroup


@click.group(cls=WholeHelpGroup)
def shadow() -> None:
    """Shadow mode (ROLESYNC_MODE=shadow): what the passes would write to Kinde, none of it written."""


@shadow.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@oncall_command
def report(as_json: bool) -> None:
    """Every (org, user) where Kinde differs from what the service would make it, as of the last pass over it:
    the roles it would add (which customer, plan and plans.toml line gives each) and remove ("no plan grants
    it"). Run `rolesync reconcile` in shadow mode first so every customer has been looked at."""
    from common.entitlements.shadow_writes import RedisShadowLog
    from common.infra.connections import redis_client

    found = RedisShadowLog(redis_client(settings_for("REDIS_URL"))).all()
    if as_json:
        click.echo(json.dumps({"targets": [w.to_dict() for w in found]}, indent=2, sort_keys=True))
        return
    if not found:
        click.echo("No difference recorded: Kinde holds what the service would write (as of the last passes).")
        return
    for write in found:
        click.echo(f"{write.user_id} in {write.org_code}:")
        for op, roles in (("add", write.add), ("remove", write.remove)):
            for role in roles:
                click.echo(f"  would {op} {role}: {'; '.join(write.why.get(role, []))}")
    adds, removes = sum(len(w.add) for w in found), sum(len(w.remove) for w in found)
    click.echo(f"{len(found)} target(s) differ: {adds} role(s) to add, {removes} to remove "
               "(keep a removal with `rolesync adopt --grant`).")  # fmt: skip
