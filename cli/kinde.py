"""`rolesync kinde …`: wire the Kinde business up through its own Management API."""

from __future__ import annotations

import sys

import click

from cli.help import WholeHelpGroup
from common.errors import ConfigError, ServiceError
from common.settings import Settings


@click.group(cls=WholeHelpGroup)
def kinde() -> None:
    """Set-up actions against your Kinde business."""


@kinde.command("register-webhook")
@click.option(
    "--url", default="", help="The ingest's public URL, https://…/webhooks/kinde (default: ROLESYNC_WEBHOOK_URL)."
)
@click.option("--dry-run", is_flag=True, help="Print what would be sent and send nothing.")
def register_webhook(url: str, dry_run: bool) -> None:
    """Create or update the Kinde webhook so it sends exactly the event types the ingest acts on."""
    try:
        click.echo(_register(url, dry_run))
    except ServiceError as exc:
        click.echo(f"rolesync: {exc}", err=True)
        sys.exit(2 if isinstance(exc, ConfigError) else 1)


def _register(url: str, dry_run: bool) -> str:
    settings = Settings.from_env().require("KINDE_DOMAIN", "KINDE_CLIENT_ID", "KINDE_CLIENT_SECRET")
    import httpx

    from doctor.access import connect
    from doctor.register import register
    from doctor.webhooks import KindeWebhookRegistry, checked_url

    target = checked_url(url or settings.webhook_url)
    with httpx.Client(timeout=settings.kinde_http_timeout_s) as http:
        return register(KindeWebhookRegistry(connect(settings, http).api), target, dry_run=dry_run)
