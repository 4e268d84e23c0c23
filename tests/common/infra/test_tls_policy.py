"""TLS that verifies: doctor warns, by name and with the fix, on store URLs whose TLS does not check the server.

Also the Sentinel form's own password (`?sentinel_password=`): it reaches the sentinels' connections,
never the primary's, and is masked wherever the URL is shown.
"""

from __future__ import annotations

import httpx
import pytest

from common.infra.connections import redis_client
from common.infra.redis_url import parse_sentinel
from common.infra.tls_policy import postgres_problem, redis_problem
from common.settings import Settings, mask_url
from doctor import tls
from doctor.config import _redis_fix
from doctor.report import Status, as_line
from doctor.session import Session
from tests.procs import ROOT


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql://u:p@db.internal:5432/rs", "no sslmode"),
        ("postgresql://u:p@db.internal/rs?sslmode=disable", "sslmode=disable"),
        ("postgresql://u:p@db.internal/rs?sslmode=allow", "sslmode=allow"),
        ("postgresql://u:p@db.internal/rs?sslmode=prefer", "sslmode=prefer"),
        ("postgresql://u:p@db.internal/rs?sslmode=require", "sslmode=require"),
        ("postgresql://u:p@127.0.0.1,db.internal/rs?sslmode=require", "to db.internal"),
        ("postgresql://u:p@/rs?host=db.internal&sslmode=require", "to db.internal"),
    ],
)
def test_a_postgres_url_that_does_not_verify_is_a_problem(url: str, says: str) -> None:
    problem = postgres_problem(url)
    assert problem is not None
    assert says in problem
    assert "does not verify" in problem


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p@db.internal/rs?sslmode=verify-full",
        "postgresql://u:p@db.internal/rs?sslmode=verify-ca&sslrootcert=/ca.pem",
        "postgresql://u:p@127.0.0.1:5432/rs",
        "postgresql://u:p@localhost/rs?sslmode=disable",
        "postgresql://u:p@[::1]/rs",
        "postgresql:///rs?host=/var/run/postgresql",
    ],
)
def test_a_verifying_or_loopback_postgres_url_is_fine(url: str) -> None:
    assert postgres_problem(url) is None


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis://:pw@redis.internal:6379/0", "plain redis://"),
        ("rediss://:pw@redis.internal:6380/0?ssl_cert_reqs=none", "ssl_cert_reqs=none"),
        ("rediss://:pw@redis.internal:6380/0?ssl_cert_reqs=optional", "ssl_cert_reqs=optional"),
        ("redis+sentinel://:pw@s1.internal,s2.internal/m/0", "plain redis://"),
        ("rediss+sentinel://s1.internal/m/0?ssl_cert_reqs=none", "ssl_cert_reqs=none"),
    ],
)
def test_a_redis_url_that_does_not_verify_is_a_problem(url: str, says: str) -> None:
    problem = redis_problem(url)
    assert problem is not None
    assert says in problem


@pytest.mark.parametrize(
    "url",
    [
        "rediss://:pw@redis.internal:6380/0",
        "rediss://:pw@redis.internal:6380/0?ssl_cert_reqs=required&ssl_ca_certs=/ca.pem",
        "redis://:pw@127.0.0.1:6379/0",
        "redis://localhost:6379/0",
        "rediss+sentinel://s1.internal,s2.internal/m/0?ssl_ca_certs=/ca.pem",
        "redis+sentinel://127.0.0.1:26379/m/0",
    ],
)
def test_a_verifying_or_loopback_redis_url_is_fine(url: str) -> None:
    assert redis_problem(url) is None


def _session(environ: dict[str, str]) -> Session:
    return Session(Settings.from_env(environ), httpx.Client())


def test_doctor_warns_by_name_with_the_fix() -> None:
    session = _session(
        {
            "REDIS_URL": "rediss://:pw@redis.internal:6380/0?ssl_cert_reqs=none",
            "ROLESYNC_POSTGRES_URL": "postgresql://u:pw@db.internal:5432/rs?sslmode=require",
        }
    )
    redis_line, postgres_line = tls.check_redis_tls(session), tls.check_postgres_tls(session)
    assert (redis_line.status, postgres_line.status) == (Status.WARN, Status.WARN)
    assert as_line(redis_line).startswith("[WARN] redis tls: ssl_cert_reqs=none to redis.internal")
    assert "drop ssl_cert_reqs=none" in redis_line.fix
    assert as_line(postgres_line).startswith("[WARN] postgres tls: sslmode=require to db.internal")
    assert "sslmode=verify-full" in postgres_line.fix
    assert "pw" not in as_line(redis_line) + as_line(postgres_line)


def test_doctor_is_quiet_on_verified_tls_and_loopback() -> None:
    session = _session(
        {
            "REDIS_URL": "rediss://:pw@redis.internal:6380/0",
            "ROLESYNC_POSTGRES_URL": "postgresql://u:pw@db.internal/rs?sslmode=verify-full",
        }
    )
    assert (tls.check_redis_tls(session).status, tls.check_postgres_tls(session).status) == (Status.OK, Status.OK)
    local = _session({"REDIS_URL": "redis://127.0.0.1:6379/0"})
    assert (tls.check_redis_tls(local).status, tls.check_postgres_tls(local).status) == (Status.OK, Status.OK)


SENTINEL_URL = "rediss+sentinel://:primarypw@s1:26379,s2/m/0?ssl_ca_certs=/ca.pem&sentinel_password=s%40ntinelpw"


def test_the_sentinels_own_password_is_read_and_kept_apart_from_the_primarys() -> None:
    target = parse_sentinel(SENTINEL_URL)
    assert (target.password, target.sentinel_password, target.sentinel_username) == ("primarypw", "s@ntinelpw", None)
    assert target.connection_options() == {"ssl": True, "ssl_ca_certs": "/ca.pem"}
    with_user = parse_sentinel("redis+sentinel://h1/m/0?sentinel_username=mon&sentinel_password=x")
    assert with_user.sentinel_auth() == {"username": "mon", "password": "x"}
    assert parse_sentinel("redis+sentinel://h1/m/0").sentinel_auth() == {}


def test_the_sentinel_password_reaches_the_sentinels_connections_and_is_masked() -> None:
    settings = Settings.from_env({"REDIS_URL": SENTINEL_URL})
    primary = redis_client(settings)  # builds pools only: no connection is made here
    sentinel_kwargs = [s.connection_pool.connection_kwargs for s in primary.connection_pool.sentinel_manager.sentinels]
    assert [k.get("password") for k in sentinel_kwargs] == ["s@ntinelpw", "s@ntinelpw"]
    assert primary.connection_pool.connection_kwargs["password"] == "primarypw"
    shown = mask_url(settings.redis_url.reveal())
    assert "ntinelpw" not in shown
    assert "primarypw" not in shown
    assert "sentinel_password=****" in shown
    assert "ntinelpw" not in mask_url("redis+sentinel://h1/m/0?sentinel_password=ntinelpw")


def test_the_docs_recommend_tls_that_verifies() -> None:
    for name in ("README.md", "docs/deploy.md", "docs/security.md"):
        text = (ROOT / name).read_text()
        assert "sslmode=verify-full" in text, name
        assert "`?sslmode=require` for TLS" not in text, name
        assert "(or `ssl_cert_reqs=none`)" not in text, name
    assert "ssl_cert_reqs=none" not in _redis_fix("rediss://h:6380/0")
