"""Every setting the service reads, parsed from the environment in this one module.

`Settings.from_env(environ)` never fails on a missing variable: each command asks for what it
needs with `settings.require(...)`, which raises `ConfigError` naming the variable. Secrets are
`Secret` values whose repr is masked; URLs that may hold a password are masked too.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal, TypeVar

from common.errors import ConfigError
from common.infra import tracing
from common.infra.durations import parse_duration
from common.infra.redis_url import is_sentinel, parse_sentinel
from common.infra.secret_strength import HOW, weak_key, weakness
from common.infra.url_policy import check_https, check_kinde_domain, custom_domains, insecure_local

MappingChange = Literal["apply", "hold"]
MAPPING_CHANGES: dict[str, MappingChange] = {"apply": "apply", "hold": "hold"}
Mode = Literal[
    "live", "shadow"
]  # shadow: everything runs, but no role is written to Kinde (worker/convergence/targets.py)
MODES: dict[str, Mode] = {"live": "live", "shadow": "shadow"}
Choice = TypeVar("Choice", bound=str)


class Secret:
    """A value that never shows itself in a repr, a log line or an error message."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


def mask_url(url: str) -> str:
    """`redis://:pw@host:6379/0` -> `redis://:****@host:6379/0` (and `sentinel_password=****`); else unchanged.

    Split by hand rather than by urlsplit: a Sentinel URL's netloc lists several hosts, which
    urlsplit cannot read a port from.
    """
    url = re.sub(r"([?&]sentinel_password=)[^&#]*", r"\1****", url)  # the sentinels' own (common/infra/redis_url.py)
    scheme, sep, rest = url.partition("://")
    netloc, slash, tail = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    if not (sep and at) or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:****@{hosts}{slash}{tail}"


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None


def _float(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw or raw == "0":
        return default
    try:
        return parse_duration(raw)
    except ConfigError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def _choice(environ: Mapping[str, str], name: str, choices: Mapping[str, Choice], default: str) -> Choice:
    """One of a setting's few words (the first is its default), or one line naming them all."""
    raw = environ.get(name, "").strip().lower() or default
    found = choices.get(raw)
    if found is not None:
        return found
    raise ConfigError(f"{name} must be {' or '.join(choices)}, got {raw!r}")


def _mapping_change(environ: Mapping[str, str]) -> MappingChange:
    return _choice(environ, "ROLESYNC_MAPPING_CHANGE", MAPPING_CHANGES, "apply")


def _mode(environ: Mapping[str, str]) -> Mode:
    return _choice(environ, "ROLESYNC_MODE", MODES, "live")


def _redis_url(raw: str) -> Secret:
    """Checked now for the Sentinel form, so a typo is one line at start-up, not a traceback later."""
    url = raw.strip()
    if is_sentinel(url):
        parse_sentinel(url)
    return Secret(url)


def _min_replicas(environ: Mapping[str, str], url: Secret) -> int:
    # A Sentinel failover promotes a replica that may lack the last writes: by default the ingest
    # answers 200 only once one replica has the event (ingest/batching.py), or 503 and Kinde retries.
    default = 1 if is_sentinel(url.reveal()) else 0
    found = _int(environ, "ROLESYNC_REDIS_MIN_REPLICAS", default)
    if found < 0:
        raise ConfigError(f"ROLESYNC_REDIS_MIN_REPLICAS must be 0 or more, got {found}")
    return found


def _mapping_tick_s(environ: Mapping[str, str]) -> float:
    found = _float(environ, "ROLESYNC_MAPPING_TICK_S", 5.0)
    if found <= 0:
        raise ConfigError(f"ROLESYNC_MAPPING_TICK_S must be more than 0, got {found:g}")
    return found


API_SCOPES = frozenset({"users", "customers"})  # what a key listing no scopes gets: reading only
USAGE_WRITE_SCOPE = "usage:write"  # PUT /v1/customers/{id}/usage/{metric}: only a key that names it
CONSOLE_READ_SCOPE = "console"  # signs in to the on-call console at /console/ to read (console/)
CONSOLE_WRITE_SCOPE = "console:write"  # signs in to read and to act (replay, purge, link, paid, reconcile)
CONSOLE_SCOPES = frozenset({CONSOLE_READ_SCOPE, CONSOLE_WRITE_SCOPE})
GRANTS_WRITE_SCOPE = "grants:write"  # PUT/DELETE /v1/grants/{id}: hand grants (common/entitlements/manual_grants.py)
KNOWN_SCOPES = API_SCOPES | {USAGE_WRITE_SCOPE, GRANTS_WRITE_SCOPE} | CONSOLE_SCOPES


@dataclass(frozen=True)
class ApiKey:
    """One bearer key of the read API: a label (safe to log), the key itself (a Secret) and its scopes."""

    label: str
    key: Secret
    scopes: frozenset[str]


def _api_keys(raw: str) -> tuple[ApiKey, ...]:
    """`label:key[:scope+scope]` entries separated by commas; no scopes = the read scopes (`API_SCOPES`)."""
    found = []
    for entry in (e.strip() for e in raw.split(",")):
        if not entry:
            continue
        label, _, rest = entry.partition(":")
        key, _, scopes = rest.partition(":")
        wanted = frozenset(s for s in scopes.split("+") if s) or API_SCOPES
        if not label or not key:
            missing = "label" if not label else "key"
            raise ConfigError(
                f"ROLESYNC_API_KEYS: entry {label or '?'!r} has no {missing}: each entry is label:key[:scope+scope]"
            )
        unknown = wanted - KNOWN_SCOPES
        if unknown:
            raise ConfigError(
                f"ROLESYNC_API_KEYS: entry {label!r} names unknown scope(s) {', '.join(sorted(unknown))}; "
                f"the scopes are {', '.join(sorted(KNOWN_SCOPES))} (joined with +, e.g. users+usage:write)"
            )
        _strong(f"ROLESYNC_API_KEYS: the key of entry {label!r}", key)
        found.append(ApiKey(label, Secret(key), wanted))
    return tuple(found)


def _postgres_url(raw: str) -> Secret:
    url = raw.strip()
    if url and not url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(f"ROLESYNC_POSTGRES_URL must be a postgresql:// URL, got {mask_url(url)!r}")
    return Secret(url)


def _strong(what: str, value: str) -> None:
    """A shared secret of at least 128 bits and no pattern (common/infra/secret_strength.py).

    The error never quotes it.
    """
    why = weakness(value)
    if why:
        raise ConfigError(f"{what} is too weak ({why}); {HOW}")


def _workflow_secret(raw: str) -> Secret:
    secret = raw.strip()
    if secret:
        _strong("ROLESYNC_WORKFLOW_SECRET (unset it to turn the guard off)", secret)
    return Secret(secret)


def _domain(raw: str, *, custom: frozenset[str], local_ok: bool) -> str:
    raw = raw.strip().rstrip("/")
    if raw and "://" not in raw:
        raise ConfigError(f"KINDE_DOMAIN must include the scheme, e.g. https://acme.kinde.com (got {raw!r})")
    return check_kinde_domain(raw, custom=custom, local_ok=local_ok)


WHSEC_PREFIX = "whsec_"


def notify_key(secret: Secret) -> bytes:
    """The HMAC key: `whsec_<base64>` decoded (the Standard Webhooks convention), else the raw secret's bytes."""
    raw = secret.reveal().strip()
    if not raw.startswith(WHSEC_PREFIX):
        return raw.encode()
    encoded = raw.removeprefix(WHSEC_PREFIX)
    try:
        return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError("ROLESYNC_NOTIFY_SECRET starts with whsec_ but the rest is not base64") from None


def _notify(environ: Mapping[str, str], *, local_ok: bool) -> tuple[str, Secret]:
    """ROLESYNC_NOTIFY_URL and its secret: both or neither, checked now so a typo is one line at start-up."""
    url, secret = environ.get("ROLESYNC_NOTIFY_URL", "").strip(), Secret(environ.get("ROLESYNC_NOTIFY_SECRET", ""))
    check_https("ROLESYNC_NOTIFY_URL", url, local_ok=local_ok)
    if url and not notify_key(secret):
        raise ConfigError("ROLESYNC_NOTIFY_URL is set but ROLESYNC_NOTIFY_SECRET is empty")
    if url:
        raw = secret.reveal().strip()
        why = weak_key(notify_key(secret)) if raw.startswith(WHSEC_PREFIX) else weakness(raw)
        if why:
            raise ConfigError(f"ROLESYNC_NOTIFY_SECRET is too weak ({why}); {HOW}")
    return url, secret


@dataclass(frozen=True)
class Settings:
    kinde_domain: str = ""
    # Hosts besides *.kinde.com allowed as KINDE_DOMAIN (a Kinde custom domain); common/infra/url_policy.py.
    kinde_custom_domains: frozenset[str] = frozenset()
    # http and loopback URLs allowed: a local sandbox only (the demo, tests); status and doctor warn.
    insecure_local: bool = False
    kinde_client_id: str = ""
    kinde_client_secret: Secret = field(default_factory=lambda: Secret(""))
    kinde_jwks_url: str = ""
    kinde_org_code: str = ""
    kinde_api_rps: float = 10.0
    kinde_http_timeout_s: float = 10.0
    redis_url: Secret = field(default_factory=lambda: Secret(""))
    redis_min_replicas: int = 0
    plans_path: Path = Path("plans.toml")
    event_max_age_s: int = 72 * 3600
    event_max_future_s: int = 300
    dedupe_ttl_s: int = 72 * 3600
    jwks_refetch_cooldown_s: int = 30
    max_retries: int = 40
    max_backoff_ms: int = 30 * 60 * 1000
    worker_shutdown_timeout_s: int = 25
    janitor_interval_s: int = 15
    heartbeat_timeout_s: int = 60
    # A worker SIGKILLed mid-pass blocks its customer until this lease expires (docs/reliability.md).
    customer_lease_s: int = 60
    reconcile_every_s: float = 0.0
    scope_probe_interval_s: float = 30.0
    worker_metrics_port: int = 0
    worker_metrics_host: str = "0.0.0.0"  # the pod scrape port; a NetworkPolicy limits who reaches it
    log_level: str = "info"
    tracing: bool = False  # an OTLP endpoint in the standard OTEL_* variables (common/infra/tracing.py)
    webhook_url: str = ""  # the public URL Kinde posts to; doctor and register-webhook default to it
    # What a fleet starting with a plans.toml no sweep applied does: sweep by itself, or wait for on-call.
    mapping_change: MappingChange = "apply"
    mapping_tick_s: float = 5.0  # how often each replica checks the plans.toml mapping it runs against the applied one
    # shadow: passes run and record what they would write (`rolesync shadow report`), but write no role.
    mode: Mode = "live"
    api_keys: tuple[ApiKey, ...] = ()  # bearer keys of the read API (`rolesync api`); their keys are Secrets
    history_ttl_s: int = 30 * 24 * 3600  # a customer's timeline expires this long after its last entry
    notify_url: str = ""  # where `entitlements.updated` webhooks go (worker/outputs/notify.py); "" sends none
    notify_secret: Secret = field(default_factory=lambda: Secret(""))  # their HMAC key (whsec_<base64> or raw)
    notify_max_retries: int = 20  # ≈ 4 h of back-off (worker/runtime/retry_policy.py retry_horizon_s)
    notify_timeout_s: float = 10.0
    # The optional Postgres entitlements table (worker/outputs/table_sync.py); empty = no table, no connection.
    postgres_url: Secret = field(default_factory=lambda: Secret(""))
    # The header Kinde's plan-selection workflow sends to POST /v1/plan-selection; unset = the guard is off.
    workflow_secret: Secret = field(default_factory=lambda: Secret(""))
    # Billing events per burst window (ingest/enqueue.py) past which an existing customer's go to the
    # bulk queue; 0 = never by burst (docs/deploy.md, "Bulk without starvation").
    bulk_burst_events: int = 30
    # Failed authentications (401) per client address within the window before the API answers 429
    # (api/auth_limit.py); 0 = no limit.
    api_auth_failures: int = 20
    api_auth_window_s: float = 60.0
    # `/v1` reads in flight per API pod (and as many plan-selection calls) before a fast 503 (api/concurrency.py).
    api_max_in_flight: int = 64
    # How long a console sign-in lasts (console/session.py): the signed cookie is refused after this.
    console_session_s: int = 8 * 3600
    # Webhooks whose signature fails against one of our keys, per client address within the window, before
    # the ingest answers 429 (ingest/signature_limit.py); 0 = no limit.
    ingest_signature_failures: int = 20
    ingest_signature_window_s: float = 60.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        redis_url = _redis_url(env.get("REDIS_URL", ""))
        local_ok = insecure_local(env.get("ROLESYNC_INSECURE_LOCAL", ""))
        custom = custom_domains(env.get("ROLESYNC_KINDE_CUSTOM_DOMAINS", ""))
        notify_url, notify_secret = _notify(env, local_ok=local_ok)
        jwks_url = check_https("KINDE_JWKS_URL", env.get("KINDE_JWKS_URL", "").strip(), local_ok=local_ok)
        return cls(
            kinde_domain=_domain(env.get("KINDE_DOMAIN", ""), custom=custom, local_ok=local_ok),
            kinde_custom_domains=custom,
            insecure_local=local_ok,
            kinde_client_id=env.get("KINDE_CLIENT_ID", "").strip(),
            kinde_client_secret=Secret(env.get("KINDE_CLIENT_SECRET", "")),
            kinde_jwks_url=jwks_url,
            kinde_org_code=env.get("KINDE_ORG_CODE", "").strip(),
            kinde_api_rps=_float(env, "KINDE_API_RPS", 10.0),
            kinde_http_timeout_s=_float(env, "KINDE_HTTP_TIMEOUT_S", 10.0),
            redis_url=redis_url,
            redis_min_replicas=_min_replicas(env, redis_url),
            plans_path=Path(env.get("ROLESYNC_PLANS", "").strip() or "plans.toml"),
            event_max_age_s=_int(env, "ROLESYNC_EVENT_MAX_AGE_S", 72 * 3600),
            event_max_future_s=_int(env, "ROLESYNC_EVENT_MAX_FUTURE_S", 300),
            dedupe_ttl_s=_int(env, "ROLESYNC_DEDUPE_TTL_S", 72 * 3600),
            jwks_refetch_cooldown_s=_int(env, "ROLESYNC_JWKS_COOLDOWN_S", 30),
            max_retries=_int(env, "ROLESYNC_MAX_RETRIES", 40),
            max_backoff_ms=_int(env, "ROLESYNC_MAX_BACKOFF_MS", 30 * 60 * 1000),
            worker_shutdown_timeout_s=_int(env, "ROLESYNC_SHUTDOWN_TIMEOUT_S", 25),
            janitor_interval_s=_int(env, "ROLESYNC_JANITOR_INTERVAL_S", 15),
            heartbeat_timeout_s=_int(env, "ROLESYNC_HEARTBEAT_TIMEOUT_S", 60),
            customer_lease_s=_int(env, "ROLESYNC_CUSTOMER_LEASE_S", 60),
            reconcile_every_s=_seconds(env, "ROLESYNC_RECONCILE_EVERY", 0.0),
            scope_probe_interval_s=_float(env, "ROLESYNC_SCOPE_PROBE_INTERVAL_S", 30.0),
            worker_metrics_port=_int(env, "ROLESYNC_WORKER_METRICS_PORT", 0),
            worker_metrics_host=env.get("ROLESYNC_WORKER_METRICS_HOST", "").strip() or "0.0.0.0",
            log_level=env.get("ROLESYNC_LOG_LEVEL", "info").strip().lower() or "info",
            tracing=tracing.wanted(env),
            webhook_url=env.get("ROLESYNC_WEBHOOK_URL", "").strip(),
            mapping_change=_mapping_change(env),
            mapping_tick_s=_mapping_tick_s(env),
            mode=_mode(env),
            api_keys=_api_keys(env.get("ROLESYNC_API_KEYS", "")),
            history_ttl_s=_int(env, "ROLESYNC_HISTORY_TTL_S", 30 * 24 * 3600),
            notify_url=notify_url,
            notify_secret=notify_secret,
            notify_max_retries=_int(env, "ROLESYNC_NOTIFY_MAX_RETRIES", 20),
            notify_timeout_s=_float(env, "ROLESYNC_NOTIFY_TIMEOUT_S", 10.0),
            postgres_url=_postgres_url(env.get("ROLESYNC_POSTGRES_URL", "")),
            workflow_secret=_workflow_secret(env.get("ROLESYNC_WORKFLOW_SECRET", "")),
            bulk_burst_events=_int(env, "ROLESYNC_BULK_BURST", 30),
            api_auth_failures=_int(env, "ROLESYNC_API_AUTH_FAILURES", 20),
            api_auth_window_s=_float(env, "ROLESYNC_API_AUTH_WINDOW_S", 60.0),
            api_max_in_flight=_int(env, "ROLESYNC_API_MAX_IN_FLIGHT", 64),
            console_session_s=_int(env, "ROLESYNC_CONSOLE_SESSION_S", 8 * 3600),
            ingest_signature_failures=_int(env, "ROLESYNC_INGEST_SIGNATURE_FAILURES", 20),
            ingest_signature_window_s=_float(env, "ROLESYNC_INGEST_SIGNATURE_WINDOW_S", 60.0),
        )

    @property
    def jwks_url(self) -> str:
        return self.kinde_jwks_url or f"{self.kinde_domain}/.well-known/jwks.json"

    @property
    def kinde_audience(self) -> str:
        return f"{self.kinde_domain}/api"

    def require(self, *names: str) -> Settings:
        """Raise ConfigError naming the first missing environment variable among `names`."""
        for name in names:
            if not _present(self, name):
                raise ConfigError(f"{name} is not set; see the README's configuration table")
        return self

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={self._shown(f.name)!r}" for f in fields(self))
        return f"Settings({shown})"

    def _shown(self, name: str) -> object:
        value = getattr(self, name)
        if name in ("redis_url", "postgres_url"):
            return mask_url(value.reveal())
        if name == "notify_url":  # a receiver may take its own token in the query or the userinfo
            return mask_url(value.split("?", 1)[0])
        return value


_ENV_TO_FIELD = {
    "KINDE_DOMAIN": "kinde_domain",
    "KINDE_CLIENT_ID": "kinde_client_id",
    "KINDE_CLIENT_SECRET": "kinde_client_secret",
    "REDIS_URL": "redis_url",
    "ROLESYNC_API_KEYS": "api_keys",
    "ROLESYNC_POSTGRES_URL": "postgres_url",
}


def _present(settings: Settings, env_name: str) -> bool:
    value = getattr(settings, _ENV_TO_FIELD[env_name])
    return bool(value.reveal() if isinstance(value, Secret) else value)
