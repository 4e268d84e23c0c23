"""`rolesync doctor`: check the whole set-up and say how to fix what is wrong (exit 1 on a failure)."""

from __future__ import annotations

import sys

import click


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON for scripts.")
@click.option("--webhook-url", default="", help="This service's public webhook URL (default: ROLESYNC_WEBHOOK_URL).")
def doctor(as_json: bool, webhook_url: str) -> None:
    """Check settings, Kinde credentials and scopes, plans.toml, the webhook, Redis and the workers."""
    from doctor import report
    from doctor.checks import run_doctor

    results = run_doctor(webhook_url=webhook_url)
    click.echo(report.as_json(results) if as_json else report.as_text(results))
    sys.exit(0 if report.passed(results) else 1)
