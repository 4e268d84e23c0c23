"""`rolesync doctor`: every check in the order a new user fixes things, one result each.

A check that raises the service's own error (Kinde or Redis failing mid-check) becomes a failed
line, never a traceback; later checks still run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import httpx

from common.errors import ConfigError, ServiceError
from common.settings import Settings
from doctor import config, credentials, grants, hook_check, jwks, postgres, queue_redis, roles, tls, workers
from doctor.report import Result, fail
from doctor.session import Session

Check = Callable[[Session], Result]
CHECKS: tuple[tuple[str, Check], ...] = (
    ("settings", config.check_settings),
    ("kinde domain", config.check_domain),
    ("redis", config.check_redis),
    ("plans file", config.check_plans),
    ("m2m token", credentials.check_token),
    ("scopes", grants.check_grants),
    ("role keys", roles.check_role_keys),
    ("plan codes", roles.check_plan_codes),
    ("webhook", hook_check.check_webhook),
    ("jwks", jwks.check_jwks),
    ("redis as a queue", queue_redis.check_queue_redis),
    (tls.REDIS, tls.check_redis_tls),
    (postgres.NAME, postgres.check_postgres),
    (tls.POSTGRES, tls.check_postgres_tls),
    ("workers", workers.check_workers),
    ("queue", workers.check_queue),
    ("dead letters", workers.check_dead_letters),
)


def run_check(name: str, check: Check, session: Session) -> Result:
    try:
        return check(session)
    except ServiceError as exc:
        return fail(name, str(exc), "a dependency failed during the check; run `rolesync doctor` again")


def run_doctor(environ: Mapping[str, str] | None = None, *, webhook_url: str = "") -> list[Result]:
    try:
        settings = Settings.from_env(environ)
    except ConfigError as exc:
        return [fail("settings", str(exc), "fix the variable (see the README's configuration table)")]
    with httpx.Client(timeout=settings.kinde_http_timeout_s) as http:
        session = Session(settings, http, webhook_url=webhook_url or settings.webhook_url)
        try:
            return [run_check(name, check, session) for name, check in CHECKS]
        finally:
            if session.redis is not None:
                session.redis.close()
