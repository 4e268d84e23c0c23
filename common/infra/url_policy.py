"""Which URLs the service will talk to: https only, and Kinde's domain a Kinde host.

Checked once at start-up (common/settings.py), so a typo or a hostile value is one line naming the
variable and its fix, never a first request sent in the clear or to the wrong host. The M2M client
secret goes to `KINDE_DOMAIN`, the JWKS decides which webhooks are believed, and change notifications
carry customers' entitlements: each must be https to a host we mean. A local sandbox over http (the
demo, the tests, benchmarks) says so with `ROLESYNC_INSECURE_LOCAL=1`, which `rolesync status` and
doctor then report.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from common.errors import ConfigError

INSECURE_LOCAL = "ROLESYNC_INSECURE_LOCAL"
CUSTOM_DOMAINS = "ROLESYNC_KINDE_CUSTOM_DOMAINS"
KINDE_SUFFIX = ".kinde.com"
_LOCAL_HINT = f"(http and loopback hosts only for a local sandbox, with {INSECURE_LOCAL}=1)"
INSECURE_WARNING = f"{INSECURE_LOCAL}=1: http and loopback URLs are allowed (a local sandbox only, never production)"
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"", "0", "false", "no", "off"}


def insecure_local(raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE | _FALSE:
        return value in _TRUE
    raise ConfigError(f"{INSECURE_LOCAL} must be 1 or 0, got {raw.strip()!r}")


def custom_domains(raw: str) -> frozenset[str]:
    """`auth.example.com,login.example.org`: hosts (no scheme, no path) allowed as KINDE_DOMAIN."""
    hosts = frozenset(h.strip().lower().rstrip(".") for h in raw.split(",") if h.strip())
    bad = sorted(h for h in hosts if "/" in h or ":" in h or " " in h)
    if bad:
        raise ConfigError(f"{CUSTOM_DOMAINS} lists hosts only (auth.example.com), got {bad[0]!r}")
    return hosts


def shown(url: str) -> str:
    """scheme://host[:port] only: a notify URL may carry a token in its userinfo, path or query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if _port(url) else ''}"


def check_https(name: str, url: str, *, local_ok: bool) -> str:
    """`url` itself when it is https to a non-loopback host (anything http(s) when `local_ok`)."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name} must be an https:// URL, got {shown(url)!r}")
    if local_ok:
        return url
    if parts.scheme != "https":
        raise ConfigError(f"{name} must be https, got {shown(url)!r}: use https://… {_LOCAL_HINT}")
    if is_local(parts.hostname):
        raise ConfigError(f"{name} points at a loopback or link-local host ({shown(url)!r}) {_LOCAL_HINT}")
    return url


def check_kinde_domain(url: str, *, custom: frozenset[str], local_ok: bool) -> str:
    check_https("KINDE_DOMAIN", url, local_ok=local_ok)
    host = (urlsplit(url).hostname or "").rstrip(".")
    if not url or local_ok or host.endswith(KINDE_SUFFIX) or host in custom:
        return url
    raise ConfigError(
        f"KINDE_DOMAIN {shown(url)!r} is not a Kinde host: use https://<business>{KINDE_SUFFIX}, or list "
        f"your Kinde custom domain in {CUSTOM_DOMAINS} (e.g. {CUSTOM_DOMAINS}={host or 'auth.example.com'})"
    )


def is_local(host: str) -> bool:
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return address.is_loopback or address.is_link_local or address.is_unspecified


def _port(url: str) -> int | None:
    try:
        return urlsplit(url).port
    except ValueError:
        return None
