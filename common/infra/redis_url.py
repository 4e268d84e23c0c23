"""`REDIS_URL`'s Sentinel form, parsed in this one place: `redis+sentinel://h1:26379,h2:26379/<master>/<db>`.

redis-py's `from_url` knows only one host, so a Sentinel URL is read here into a `SentinelTarget`
(common/infra/connections.py builds every client from it). Forms:

    redis+sentinel://h1:26379,h2:26379,h3:26379/mymaster/0
    redis+sentinel://:PASSWORD@h1,h2/mymaster/0          (the primary's password; port 26379 if none)
    rediss+sentinel://h1:26379/mymaster/0?ssl_ca_certs=/ca.pem   (TLS to the sentinels and the primary)
    redis+sentinel://:PASSWORD@h1,h2/mymaster/0?sentinel_password=SPW  (the sentinels' own password,
                                                    Redis's `requirepass` in sentinel.conf; sentinel_username too)

A mistake in it is the operator's, so it is a `ConfigError` (one line, exit 2), never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from common.errors import ConfigError

SCHEMES = {"redis+sentinel": False, "rediss+sentinel": True}  # scheme -> TLS
DEFAULT_SENTINEL_PORT = 26379
TLS_OPTIONS = ("ssl_ca_certs", "ssl_cert_reqs")
SENTINEL_AUTH_OPTIONS = ("sentinel_username", "sentinel_password")
EXAMPLE = "redis+sentinel://h1:26379,h2:26379/<master>/<db>"


@dataclass(frozen=True)
class SentinelTarget:
    sentinels: tuple[tuple[str, int], ...]
    master: str
    db: int
    username: str | None
    password: str | None
    tls: bool
    tls_options: tuple[tuple[str, str], ...]
    sentinel_username: str | None = None
    sentinel_password: str | None = None

    def connection_options(self) -> dict[str, object]:
        """redis-py keyword arguments for the primary and the sentinels alike (TLS, its CA)."""
        options: dict[str, object] = dict(self.tls_options)
        if self.tls:
            options["ssl"] = True
        return options

    def sentinel_auth(self) -> dict[str, object]:
        """The sentinels' own credentials (none unless the URL names them): never the primary's."""
        found = {"username": self.sentinel_username, "password": self.sentinel_password}
        return {k: v for k, v in found.items() if v is not None}


def is_sentinel(url: str) -> bool:
    return url.split("://", 1)[0].lower() in SCHEMES


def parse_sentinel(url: str) -> SentinelTarget:
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in SCHEMES:
        raise ConfigError(f"REDIS_URL: a Sentinel URL starts with redis+sentinel:// or rediss+sentinel:// ({EXAMPLE})")
    userinfo, _, hosts_and_path = rest.rpartition("@")
    hosts, _, path_and_query = hosts_and_path.partition("/")
    path, _, query = path_and_query.partition("?")
    master, db = _master_and_db(path)
    username, password = _credentials(userinfo)
    options = _options(query)
    return SentinelTarget(
        sentinels=tuple(_host(h) for h in _split_hosts(hosts)),
        master=master,
        db=db,
        username=username,
        password=password,
        tls=SCHEMES[scheme.lower()],
        tls_options=tuple((k, v) for k, v in options if k in TLS_OPTIONS),
        sentinel_username=dict(options).get("sentinel_username"),
        sentinel_password=dict(options).get("sentinel_password"),
    )


def _split_hosts(hosts: str) -> list[str]:
    found = [h.strip() for h in hosts.split(",") if h.strip()]
    if not found:
        raise ConfigError(f"REDIS_URL names no sentinel host ({EXAMPLE})")
    return found


def _host(raw: str) -> tuple[str, int]:
    parts = urlsplit(f"//{raw}")
    try:
        port = parts.port or DEFAULT_SENTINEL_PORT
    except ValueError:
        raise ConfigError(f"REDIS_URL: sentinel {raw!r} has a bad port ({EXAMPLE})") from None
    if not parts.hostname:
        raise ConfigError(f"REDIS_URL: sentinel {raw!r} has no host ({EXAMPLE})")
    return parts.hostname, port


def _master_and_db(path: str) -> tuple[str, int]:
    segments = path.strip("/").split("/") if path.strip("/") else []
    if not segments or len(segments) > 2:
        raise ConfigError(f"REDIS_URL must name the Sentinel master and optionally a db: {EXAMPLE}")
    master, db = unquote(segments[0]), segments[1] if len(segments) == 2 else "0"
    if not db.isdigit():
        raise ConfigError(f"REDIS_URL: the db after the master name must be a number, got {db!r} ({EXAMPLE})")
    return master, int(db)


def _credentials(userinfo: str) -> tuple[str | None, str | None]:
    if not userinfo:
        return None, None
    user, sep, password = userinfo.partition(":")
    return (unquote(user) or None), (unquote(password) if sep else None)


def _options(query: str) -> tuple[tuple[str, str], ...]:
    given = parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(given) - set(TLS_OPTIONS) - set(SENTINEL_AUTH_OPTIONS))
    if unknown:
        known = ", ".join((*TLS_OPTIONS, *SENTINEL_AUTH_OPTIONS))
        raise ConfigError(f"REDIS_URL: unknown option(s) {', '.join(unknown)} (known: {known}; {EXAMPLE})")
    return tuple((name, values[-1]) for name, values in sorted(given.items()))
