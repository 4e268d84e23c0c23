"""Does a store URL's TLS verify the server? One answer per URL, for `rolesync doctor` (doctor/tls.py).

TLS that does not check the certificate stops a passive listener but not whoever sits in the path: the
connection, and the password sent over it, go to anyone who answers. So a URL to a host that is not
loopback should verify:

* Postgres: `sslmode=verify-full` (or `verify-ca`); libpq's default `prefer`, and `require`, encrypt
  without checking whom they talk to, and `disable`/`allow` may not encrypt at all.
* Redis: `rediss://` (TLS) with the certificate checked, which is redis-py's default; `ssl_cert_reqs=none`
  or `optional` turns the check off, and plain `redis://` sends the password in clear.

Loopback hosts (localhost, 127.0.0.0/8, ::1) and Unix sockets never leave the machine: nothing to say.
Each problem is a sentence naming what is wrong; None when the URL is fine.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import parse_qs, urlsplit

from common.infra.redis_url import is_sentinel, parse_sentinel

VERIFYING_SSLMODES = ("verify-full", "verify-ca")
UNVERIFIED_CERT_REQS = ("none", "optional")


def is_loopback(host: str | None) -> bool:
    if not host or host.startswith("/"):  # no host: a Unix socket (libpq's default too)
        return True
    if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def postgres_problem(url: str) -> str | None:
    parts = urlsplit(url)
    query = parse_qs(parts.query, keep_blank_values=True)
    hosts = _postgres_hosts(parts.netloc, query)
    if all(is_loopback(h) for h in hosts):
        return None
    sslmode = (query.get("sslmode") or [""])[-1].lower()
    if sslmode in VERIFYING_SSLMODES:
        return None
    given = f"sslmode={sslmode}" if sslmode else "no sslmode (libpq's default, prefer)"
    remote = ", ".join(str(h) for h in hosts if not is_loopback(h))
    return f"{given} to {remote} does not verify the server's certificate"


def _postgres_hosts(netloc: str, query: dict[str, list[str]]) -> list[str | None]:
    # libpq: `host=` in the query wins over the netloc; the netloc may list several hosts.
    if query.get("host"):
        return [h.strip() or None for h in query["host"][-1].split(",")]
    listed = netloc.rpartition("@")[2]
    if not listed:
        return [None]
    return [urlsplit(f"//{h}").hostname for h in listed.split(",")]


def redis_problem(url: str) -> str | None:
    if is_sentinel(url):
        target = parse_sentinel(url)
        hosts: list[str | None] = [h for h, _ in target.sentinels]
        tls, cert_reqs = target.tls, dict(target.tls_options).get("ssl_cert_reqs", "")
    else:
        parts = urlsplit(url)
        hosts = [parts.hostname] if parts.scheme != "unix" else [None]
        tls = parts.scheme == "rediss"
        cert_reqs = (parse_qs(parts.query).get("ssl_cert_reqs") or [""])[-1]
    remote = [h for h in hosts if not is_loopback(h)]
    if not remote:
        return None
    if not tls:
        return f"plain redis:// to {', '.join(map(str, remote))}: the password and the queue cross the network in clear"
    if cert_reqs.lower() in UNVERIFIED_CERT_REQS:
        return f"ssl_cert_reqs={cert_reqs} to {', '.join(map(str, remote))} does not verify the server's certificate"
    return None
