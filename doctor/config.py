"""The first checks: settings present and well formed, Kinde's domain and Redis reachable, plans parse."""

from __future__ import annotations

from common.errors import ConfigError, RetryableError
from common.infra.url_policy import INSECURE_LOCAL, INSECURE_WARNING
from common.plans.mapping import load_plans
from common.settings import mask_url
from doctor.http_probe import probe
from doctor.redis_probe import AUTH_REFUSED, connect
from doctor.report import Result, fail, ok, skip, warn
from doctor.session import Session

REQUIRED = ("KINDE_DOMAIN", "KINDE_CLIENT_ID", "KINDE_CLIENT_SECRET", "REDIS_URL")
README = "see the README's configuration table"


def check_settings(session: Session) -> Result:
    missing = [name for name in REQUIRED if not _present(session, name)]
    if missing:
        return fail("settings", f"not set: {', '.join(missing)}", f"export {missing[0]}=… ({README})")
    return ok("settings", f"{', '.join(REQUIRED)} set")


def _present(session: Session, name: str) -> bool:
    try:
        session.settings.require(name)
    except ConfigError:
        return False
    return True


def check_domain(session: Session) -> Result:
    domain = session.settings.kinde_domain
    if not domain:
        return skip("kinde domain", "KINDE_DOMAIN")
    # https and a Kinde host were checked by Settings.from_env (common/infra/url_policy.py) unless insecure_local.
    try:
        probe(session.http, domain, follow_redirects=False)
    except RetryableError as exc:
        return fail("kinde domain", str(exc), "check KINDE_DOMAIN and the network")
    session.domain_ok = True
    if session.settings.insecure_local:
        return warn(
            "kinde domain", f"{domain} answers; {INSECURE_WARNING}", f"unset {INSECURE_LOCAL} outside a sandbox"
        )
    return ok("kinde domain", f"{domain} answers")


def check_redis(session: Session) -> Result:
    raw = session.settings.redis_url.reveal()
    if not raw:
        return skip("redis", "REDIS_URL")
    shown = mask_url(raw)
    try:
        session.redis = connect(session.settings)
    except ConfigError as exc:
        if exc.reason == AUTH_REFUSED:
            return fail(
                "redis",
                f"{shown} refused the password",
                "put the right password in REDIS_URL: redis://:PASSWORD@host:6379/0",
            )
        return fail("redis", f"{shown}: {exc}", _redis_fix(raw))
    except RetryableError as exc:
        return fail("redis", f"{shown}: {exc}", _redis_fix(raw))
    return ok("redis", f"{shown} answers PING")


def _redis_fix(url: str) -> str:
    if url.startswith("rediss://"):
        return "check host/port and the CA: rediss://host:6380/0?ssl_ca_certs=/path/ca.pem (the provider's CA bundle)"
    return "start Redis or fix REDIS_URL (managed Redis with TLS: rediss://…)"


def check_plans(session: Session) -> Result:
    path = session.settings.plans_path
    try:
        session.plans = load_plans(path)
    except ConfigError as exc:
        return fail(
            "plans file", str(exc), "fix plans.toml (see the README's plans file section) or set ROLESYNC_PLANS"
        )
    count = len(session.plans.roles_by_plan)
    policy = session.plans.payment_failed
    grants = f" (grants {', '.join(policy.grants)})" if policy.grants else ""
    return ok("plans file", f"{path}: {count} plan(s), {len(session.plans.managed_roles)} managed role(s); "
                            f"failed payments: {policy.action}{grants}")  # fmt: skip
