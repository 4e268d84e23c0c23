"""`rolesync doctor`: TLS to Redis and Postgres verifies the server (common/infra/tls_policy.py).

A warning, not a failure: a provider reached over a private link may be fine without it, but the
operator should decide that knowingly. Each line names the fix.
"""

from __future__ import annotations

from common.infra.tls_policy import postgres_problem, redis_problem
from doctor.report import Result, ok, skip, warn
from doctor.session import Session

REDIS = "redis tls"
POSTGRES = "postgres tls"
REDIS_FIX = (
    "use rediss://:PASSWORD@host:6380/0 with the certificate checked (drop ssl_cert_reqs=none/optional; "
    "a private CA: ?ssl_ca_certs=/path/ca.pem)"
)
POSTGRES_FIX = "add ?sslmode=verify-full to ROLESYNC_POSTGRES_URL (a private CA: &sslrootcert=/path/ca.pem)"


def check_redis_tls(session: Session) -> Result:
    url = session.settings.redis_url.reveal()
    if not url:
        return skip(REDIS, "REDIS_URL")
    problem = redis_problem(url)
    if problem:
        return warn(REDIS, problem, REDIS_FIX)
    return ok(REDIS, "verified TLS, or loopback")


def check_postgres_tls(session: Session) -> Result:
    url = session.settings.postgres_url.reveal()
    if not url:
        return ok(POSTGRES, "not configured (ROLESYNC_POSTGRES_URL unset)")
    problem = postgres_problem(url)
    if problem:
        return warn(POSTGRES, problem, POSTGRES_FIX)
    return ok(POSTGRES, "sslmode verifies the server, or loopback")
