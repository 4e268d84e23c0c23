"""The `rolesync` console script: thin click commands over plain functions.

Each command imports its component lazily, so `rolesync --help` is fast and a command never pays
for (or breaks on) another component's imports. `ConfigError` (a missing variable, a bad plans
file) exits with status 2 and one line; no traceback for a user's mistake.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from cli.dev_parts import require_dev_parts
from cli.help import SectionedGroup
from common.errors import ConfigError
from common.infra.version import release
from common.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


def config_errors_exit_2(func: F) -> F:
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            click.echo(f"rolesync: {exc}", err=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


class RolesyncGroup(SectionedGroup):
    sections = (
        ("Run the service", ("ingest", "worker", "api")),
        ("On-call", ("status", "doctor", "dlq", "customers", "grants", "reconcile", "guard", "audit", "migrate")),
        ("Adopting an existing tenant", ("shadow", "adopt")),
        ("Set-up and trying it", ("init", "demo", "sandbox", "kinde", "db")),
    )


@click.group(cls=RolesyncGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(release(), "--version", "-V", prog_name="rolesync", message="%(prog)s %(version)s")
def cli() -> None:
    """Keep Kinde roles in step with Kinde billing plans."""


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to serve POST /webhooks/kinde on.")
@click.option("--metrics-port", default=0, type=int, help="Serve /metrics here, off the public port (0: public).")
@click.option("--metrics-host", default="", help="Interface of the metrics port (default: --host).")
@config_errors_exit_2
def ingest(host: str, port: int, metrics_port: int, metrics_host: str) -> None:
    """Serve the webhook endpoint (needs REDIS_URL and KINDE_DOMAIN)."""
    settings = Settings.from_env().require("REDIS_URL", "KINDE_DOMAIN")
    from ingest.server import serve

    serve(settings, host=host, port=port, metrics_port=metrics_port, metrics_host=metrics_host)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8010, show_default=True, type=int, help="Port of the read API.")
@click.option("--metrics-port", default=0, type=int, help="Serve /metrics here, off the public port (0: public).")
@click.option("--metrics-host", default="", help="Interface of the metrics port (default: --host).")
@click.option("--guard-port", default=0, type=int,
              help="Serve POST /v1/plan-selection here, on an event loop of its own (0: on --port).")  # fmt: skip
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Processes answering on --port (one core each; docs/deploy.md, 'Sizing the read API').")  # fmt: skip
@config_errors_exit_2
def api(host: str, port: int, metrics_port: int, metrics_host: str, guard_port: int, workers: int) -> None:
    """Serve the read API, the plan-selection guard and the on-call console at /console/ (needs REDIS_URL,
    ROLESYNC_API_KEYS; the console only when a key has the console or console:write scope)."""
    settings = Settings.from_env().require("REDIS_URL", "ROLESYNC_API_KEYS")
    from api.server import serve
    from console.app import console_routes

    serve(settings, host=host, port=port, metrics_port=metrics_port, metrics_host=metrics_host,
          guard_port=guard_port, more=console_routes, workers=workers)  # fmt: skip


@cli.command()
@click.option("--processes", "-p", default=1, show_default=True, type=int, help="Worker processes.")
@click.option("--threads", "-t", default=8, show_default=True, type=int, help="Threads per process.")
@click.option("--reconcile-every", default="", help="Sweep every customer this often, e.g. 6h (one replica sweeps).")
@config_errors_exit_2
def worker(processes: int, threads: int, reconcile_every: str) -> None:
    """Run Dramatiq worker processes (needs REDIS_URL, KINDE_DOMAIN, KINDE_CLIENT_ID, KINDE_CLIENT_SECRET)."""
    if reconcile_every:
        from common.infra.durations import parse_duration

        parse_duration(reconcile_every)  # a bad value is one line and exit 2, before anything starts
        os.environ["ROLESYNC_RECONCILE_EVERY"] = reconcile_every  # read by the forked scheduler's settings
    settings = Settings.from_env().require("REDIS_URL", "KINDE_DOMAIN", "KINDE_CLIENT_ID", "KINDE_CLIENT_SECRET")
    from worker.entrypoints.launcher import run

    sys.exit(run(settings, processes=processes, threads=threads))


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8700, show_default=True, type=int)
@click.option("--webhook-url", default="", help="Where to POST signed webhooks (e.g. the ingest).")
@click.option("--seed-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None)
@click.option("--time-scale", default=1.0, show_default=True, type=float, help="Divide Kinde's retry delays by this.")
@click.option("--client-id", default="sandbox-client", show_default=True, help="M2M client id the sandbox accepts.")
@click.option("--client-secret", default="sandbox-secret", show_default=True, help="M2M client secret it accepts.")
@click.option("--snapshot-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Load the tenant from this JSON file if it exists; save it there on shutdown.")  # fmt: skip
@click.option("--token-lifetime", default=86400, show_default=True, type=click.IntRange(min=1),
              help="expires_in of issued M2M tokens, seconds.")  # fmt: skip
@click.option("--rate-limit", default=0.0, show_default=True, type=click.FloatRange(min=0),
              help="Token-bucket requests/s over /api/v1 (0 = off).")  # fmt: skip
@click.option("--rate-burst", default=0, show_default=True, type=click.IntRange(min=0), help="Token-bucket burst.")
@click.option("--variant", default="mix", show_default=True,
              type=click.Choice(["mix", "customer_id", "customer_object", "flat", "with_owner"]),
              help="Shape of billing webhook data (mix = seeded random per event).")  # fmt: skip
@click.option("--random-seed", default=0, show_default=True, type=int, help="Seed for variant mix, faults, shuffle.")
@click.option("--banner/--no-banner", default=True, show_default=True,
              help="Print credentials, exports and control routes first (--no-banner: logs kept).")  # fmt: skip
@config_errors_exit_2
def sandbox(
    host: str,
    port: int,
    webhook_url: str,
    seed_file: Path | None,
    time_scale: float,
    client_id: str,
    client_secret: str,
    snapshot_file: Path | None,
    token_lifetime: int,
    rate_limit: float,
    rate_burst: int,
    variant: str,
    random_seed: int,
    banner: bool,
) -> None:
    """Run the local Kinde simulator (JWKS, M2M token, Management API, billing, signed webhooks, faults)."""
    require_dev_parts("sandbox", embedded_redis=False)
    from sandbox.server import serve

    serve(
        host=host,
        port=port,
        webhook_url=webhook_url,
        seed_file=seed_file,
        time_scale=time_scale,
        client_id=client_id,
        client_secret=client_secret,
        snapshot_file=snapshot_file,
        token_lifetime_s=token_lifetime,
        rate_limit=rate_limit,
        rate_burst=rate_burst,
        variant=variant,
        random_seed=random_seed,
        banner=banner,
    )


@cli.command()
@click.option("--keep-running", is_flag=True, help="Leave the stack up after the walk-through and print its env.")
@config_errors_exit_2
def demo(keep_running: bool) -> None:
    """Start everything locally and walk one user through sign-up, upgrade and cancel."""
    require_dev_parts("demo", embedded_redis=not os.environ.get("REDIS_URL", "").strip())  # as cli/demo.py picks
    from cli.demo import run_demo

    sys.exit(run_demo(keep_running=keep_running))


def main() -> None:
    cli()


from cli.doctor import doctor  # noqa: E402 - registered after `cli` exists; each imports its work lazily
from cli.init import init  # noqa: E402
from cli.kinde import kinde  # noqa: E402

cli.add_command(doctor)
cli.add_command(init)
cli.add_command(kinde)

from cli.adopt import adopt  # noqa: E402 - on-call commands (ops/); each imports its work lazily
from cli.audit import audit  # noqa: E402
from cli.customers import customers  # noqa: E402
from cli.db import db  # noqa: E402
from cli.dlq import dlq  # noqa: E402
from cli.grants import grants  # noqa: E402
from cli.guard import guard  # noqa: E402
from cli.migrate import migrate  # noqa: E402
from cli.reconcile import reconcile  # noqa: E402
from cli.shadow import shadow  # noqa: E402
from cli.status import status  # noqa: E402

cli.add_command(adopt)
cli.add_command(audit)
cli.add_command(dlq)
cli.add_command(customers)
cli.add_command(grants)
cli.add_command(guard)
cli.add_command(migrate)
cli.add_command(reconcile)
cli.add_command(shadow)
cli.add_command(status)
cli.add_command(db)
