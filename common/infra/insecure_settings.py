"""Settings that let a connection go unchecked, said at every start-up and by `rolesync status`.

`ROLESYNC_INSECURE_LOCAL=1` (http and loopback Kinde URLs), and store URLs whose TLS does not verify the
server (common/infra/tls_policy.py: plain `redis://` or `ssl_cert_reqs=none` to a remote Redis, a Postgres
`sslmode` short of `verify-full`). They are warnings, not refusals: compose and the dev overlay run an
in-network Redis over plain `redis://` behind a password and a NetworkPolicy, and a provider reached over
a private link may be fine without TLS. But each process says so in its log as it starts
(`insecure_setting_found`, warning level), `rolesync status` lists them, and doctor names the fix, so
nobody runs that way without knowing. The sentences name hosts and modes, never a password.
"""

from __future__ import annotations

import structlog

from common.infra.tls_policy import postgres_problem, redis_problem
from common.infra.url_policy import INSECURE_WARNING
from common.settings import Settings

log = structlog.get_logger(__name__)


def insecure_warnings(settings: Settings) -> list[str]:
    redis_url, postgres_url = settings.redis_url.reveal(), settings.postgres_url.reveal()
    found = [INSECURE_WARNING] if settings.insecure_local else []
    redis = redis_problem(redis_url) if redis_url else None
    postgres = postgres_problem(postgres_url) if postgres_url else None
    found += [f"REDIS_URL: {redis}"] if redis else []
    found += [f"ROLESYNC_POSTGRES_URL: {postgres}"] if postgres else []
    return found


def log_insecure_settings(settings: Settings) -> None:
    """One warning line per insecure setting; call once, after logging is configured."""
    for warning in insecure_warnings(settings):
        log.warning("insecure_setting_found", warning=warning)
