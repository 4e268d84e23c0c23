"""`rolesync init`: from nothing to a checked set-up: credentials, scopes, a plans.toml, an env file, the webhook.

Interactive by default (each answer defaults to the environment's value); `--non-interactive` takes
everything from flags and the environment, and the proposed mapping unless `--map` says otherwise.
Ends with `rolesync doctor` over what it learned. The work is in ops/setup_wizard.py.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cli.exits import fail, oncall_command

if TYPE_CHECKING:
    from ops.setup_wizard import Tenant


@click.command(short_help="Set up from nothing: credentials, scopes, plans.toml, env file, webhook, doctor.")
@click.option("--non-interactive", is_flag=True, help="Ask nothing: flags and the environment only.")
@click.option("--kinde-domain", default="", help="https://<business>.kinde.com (default: KINDE_DOMAIN).")
@click.option("--client-id", default="", help="The M2M application's client id (default: KINDE_CLIENT_ID).")
@click.option("--plan-code", "extra_codes", multiple=True, help="A plan code to map besides those found (repeat).")
@click.option("--map", "mappings", multiple=True, help="PLAN=ROLE[+ROLE] (repeat); default: the proposal.")
@click.option("--plans", "plans_path", type=click.Path(dir_okay=False, path_type=Path), default=Path("plans.toml"),
              show_default=True, help="Where to write the plans file.")  # fmt: skip
@click.option("--env-file", type=click.Path(dir_okay=False, path_type=Path), default=Path("rolesync.env"),
              show_default=True, help="Where to write the env file template.")  # fmt: skip
@click.option("--webhook-url", default="", help="The ingest's public URL, https://…/webhooks/kinde.")
@click.option("--register-webhook/--no-register-webhook", default=True, show_default=True,
              help="Register the Kinde webhook for --webhook-url.")  # fmt: skip
@click.option("--force", is_flag=True, help="Overwrite the plans and env files if they exist.")
@oncall_command
def init(non_interactive: bool, kinde_domain: str, client_id: str, extra_codes: tuple[str, ...],
         mappings: tuple[str, ...], plans_path: Path, env_file: Path, webhook_url: str, register_webhook: bool,
         force: bool) -> None:  # fmt: skip
    """Ask for (or read) the Kinde domain and M2M credentials, check the token and each scope, list the
    tenant's roles and plan codes, propose a plans.toml to confirm, write it and an env file, offer to
    register the webhook, and end with `rolesync doctor`. The client secret is read from KINDE_CLIENT_SECRET
    or asked (hidden), never taken as a flag."""
    import httpx

    from common.settings import Settings
    from ops import setup_wizard

    ask = not non_interactive
    env = dict(os.environ)
    env["KINDE_DOMAIN"] = _answer("Kinde domain (https://<business>.kinde.com)", kinde_domain or env.get(
        "KINDE_DOMAIN", ""), ask)  # fmt: skip
    env["KINDE_CLIENT_ID"] = _answer("M2M client id", client_id or env.get("KINDE_CLIENT_ID", ""), ask)
    if not env.get("KINDE_CLIENT_SECRET"):
        if not ask:
            fail("KINDE_CLIENT_SECRET is not set (a secret is never taken as a flag)", 2)
        env["KINDE_CLIENT_SECRET"] = click.prompt("M2M client secret", hide_input=True)
    settings = Settings.from_env(env).require("KINDE_DOMAIN", "KINDE_CLIENT_ID", "KINDE_CLIENT_SECRET")
    with httpx.Client(timeout=settings.kinde_http_timeout_s) as http:
        tenant = setup_wizard.read_tenant(settings, http)
        _say_tenant(tenant)
        mapping = _mapping(tenant, extra_codes, mappings, ask)
        _write(plans_path, setup_wizard.plans_toml(mapping), force, ask)
        url = _answer("Webhook URL of the ingest (empty: later)", webhook_url or env.get("ROLESYNC_WEBHOOK_URL", ""),
                      ask, required=False)  # fmt: skip
        _write(env_file, setup_wizard.env_template(settings, plans_path=plans_path.resolve(), webhook_url=url), force,
               ask)  # fmt: skip
        if url and register_webhook and (not ask or click.confirm("Register the Kinde webhook now?", default=True)):
            _register(tenant, url)
    env.update({"ROLESYNC_PLANS": str(plans_path.resolve()), "ROLESYNC_WEBHOOK_URL": url})
    sys.exit(_doctor(env))


def _answer(question: str, default: str, ask: bool, *, required: bool = True) -> str:
    if ask:
        return str(click.prompt(question, default=default or ("" if not required else None),
                                show_default=bool(default))).strip()  # fmt: skip
    if required and not default:
        fail(f"{question}: not given (flag or environment) and --non-interactive asks nothing", 2)
    return default


def _say_tenant(tenant: Tenant) -> None:
    from ops.setup_wizard import NO_PLAN_LISTING

    click.echo(
        f"M2M token: ok ({'scopes listed in it' if tenant.access.token_scopes is not None else 'no scope list'})"
    )
    for scope, how in {**tenant.scopes.missing, **tenant.scopes.setup_missing}.items():
        click.echo(f"  missing scope {scope} ({how}): enable it on the M2M app (Kinde → Settings → Applications)")
    if not tenant.scopes.missing:
        click.echo("scopes: every scope the service needs is granted")
    click.echo(f"roles in the tenant: {', '.join(tenant.roles) or '(none)'}")
    click.echo(f"{NO_PLAN_LISTING}: {', '.join(tenant.plan_codes) or '(none found)'}")


def _mapping(tenant: Tenant, extra: tuple[str, ...], given: tuple[str, ...], ask: bool) -> dict[str, list[str]]:
    from ops.setup_wizard import propose

    more = [c.strip() for c in extra if c.strip()]
    if ask:
        typed = click.prompt("Other plan codes (comma-separated; empty for none)", default="", show_default=False)
        more += [c.strip() for c in str(typed).split(",") if c.strip()]
    proposal = propose(dict.fromkeys([*tenant.plan_codes, *more]), tenant.roles)
    chosen = _given(given) if given else proposal
    if ask:
        chosen = {code: _roles_for(code, chosen.get(code, []), tenant.roles) for code in proposal}
    unknown = sorted({r for roles in chosen.values() for r in roles} - set(tenant.roles))
    if unknown:
        fail(f"role(s) {', '.join(unknown)} are not in the tenant; its roles: {', '.join(tenant.roles) or '(none)'}")
    return chosen


def _given(mappings: tuple[str, ...]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for item in mappings:
        code, sep, roles = item.partition("=")
        if not sep or not code.strip():
            fail(f"--map {item!r} is not PLAN=ROLE[+ROLE]")
        found[code.strip()] = [r.strip() for r in roles.split("+") if r.strip()]
    return found


def _roles_for(code: str, proposed: list[str], roles: list[str]) -> list[str]:
    """Ask until the answer names only the tenant's roles; '-' keeps the plan unmapped."""
    while True:
        typed = str(click.prompt(f"Roles for plan {code} (comma-separated; - for none)",
                                 default=",".join(proposed) or "-")).strip()  # fmt: skip
        picked = [] if typed == "-" else [r.strip() for r in typed.split(",") if r.strip()]
        unknown = [r for r in picked if r not in roles]
        if not unknown:
            return picked
        click.echo(f"not in the tenant: {', '.join(unknown)} (its roles: {', '.join(roles)})")


def _write(path: Path, text: str, force: bool, ask: bool) -> None:
    if path.exists() and not force and not (ask and click.confirm(f"{path} exists. Overwrite it?", default=False)):
        fail(f"{path} exists: nothing overwritten (add --force, or choose another path)")
    click.echo(f"--- {path}\n{text.rstrip()}")
    path.write_text(text, encoding="utf-8")
    click.echo(f"wrote {path}")


def _register(tenant: Tenant, url: str) -> None:
    from doctor.register import register
    from doctor.webhooks import KindeWebhookRegistry, checked_url

    click.echo(register(KindeWebhookRegistry(tenant.access.api), checked_url(url), dry_run=False))


def _doctor(env: dict[str, str]) -> int:
    from doctor import report
    from doctor.checks import run_doctor

    click.echo("--- rolesync doctor")
    results = run_doctor(env)
    click.echo(report.as_text(results))
    return 0 if report.passed(results) else 1
