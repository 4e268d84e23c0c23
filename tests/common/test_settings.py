"""Settings: read once from a mapping, missing variables named, secrets masked."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest

from common.errors import ConfigError
from common.settings import Secret, Settings, mask_url
from tests.procs import ROOT

FULL = {
    "KINDE_DOMAIN": "https://acme.kinde.com/",
    "KINDE_CLIENT_ID": "m2m-id",
    "KINDE_CLIENT_SECRET": "s3cr3t-value",
    "REDIS_URL": "redis://:hunter2@redis.internal:6379/0",
}


def test_reads_every_contract_variable() -> None:
    """The documented names map to fields, the domain loses its trailing slash, defaults apply."""
    settings = Settings.from_env(FULL)
    assert settings.kinde_domain == "https://acme.kinde.com"
    assert settings.kinde_client_id == "m2m-id"
    assert settings.kinde_client_secret.reveal() == "s3cr3t-value"
    assert settings.plans_path == Path("plans.toml")
    assert settings.jwks_url == "https://acme.kinde.com/.well-known/jwks.json"
    assert settings.kinde_audience == "https://acme.kinde.com/api"


def test_jwks_url_can_be_overridden() -> None:
    """KINDE_JWKS_URL wins over the path derived from the domain."""
    settings = Settings.from_env({**FULL, "KINDE_JWKS_URL": "https://acme.kinde.com/.well-known/jwks"})
    assert settings.jwks_url == "https://acme.kinde.com/.well-known/jwks"


@pytest.mark.parametrize("missing", ["REDIS_URL", "KINDE_DOMAIN", "KINDE_CLIENT_ID", "KINDE_CLIENT_SECRET"])
def test_require_names_the_missing_variable(missing: str) -> None:
    """A command that needs a variable gets a one-line error naming exactly that variable."""
    env = {k: v for k, v in FULL.items() if k != missing}
    with pytest.raises(ConfigError, match=missing):
        Settings.from_env(env).require("REDIS_URL", "KINDE_DOMAIN", "KINDE_CLIENT_ID", "KINDE_CLIENT_SECRET")


def test_domain_without_scheme_is_rejected_clearly() -> None:
    """A bare host is the commonest mistake; the error says what a good value looks like."""
    with pytest.raises(ConfigError, match="scheme"):
        Settings.from_env({"KINDE_DOMAIN": "acme.kinde.com"})


def test_malformed_number_is_rejected_with_its_name() -> None:
    """A number setting that is not a number names the variable and the bad value."""
    with pytest.raises(ConfigError, match="KINDE_API_RPS"):
        Settings.from_env({"KINDE_API_RPS": "fast"})


def test_a_mapping_change_is_applied_unless_held() -> None:
    """ROLESYNC_MAPPING_CHANGE: apply by default, hold when asked, anything else named as a mistake."""
    assert Settings.from_env(FULL).mapping_change == "apply"
    assert Settings.from_env({**FULL, "ROLESYNC_MAPPING_CHANGE": " Hold "}).mapping_change == "hold"
    with pytest.raises(ConfigError, match="ROLESYNC_MAPPING_CHANGE"):
        Settings.from_env({**FULL, "ROLESYNC_MAPPING_CHANGE": "later"})


def test_the_mapping_check_ticks_every_5_s_unless_set_and_never_at_0() -> None:
    assert Settings.from_env(FULL).mapping_tick_s == 5.0
    assert Settings.from_env({**FULL, "ROLESYNC_MAPPING_TICK_S": "0.5"}).mapping_tick_s == 0.5
    with pytest.raises(ConfigError, match="ROLESYNC_MAPPING_TICK_S"):  # 0 would spin on Redis
        Settings.from_env({**FULL, "ROLESYNC_MAPPING_TICK_S": "0"})


def test_repr_never_shows_secrets() -> None:
    """Neither the client secret nor the Redis password appears in the settings' repr."""
    text = repr(Settings.from_env(FULL))
    assert "s3cr3t-value" not in text
    assert "hunter2" not in text
    assert "redis.internal" in text


def test_secret_masks_itself_everywhere() -> None:
    """str, repr and f-strings of a Secret are masked; only reveal() gives the value."""
    secret = Secret("abc")
    assert "abc" not in f"{secret} {secret!r} {[secret]}"
    assert secret.reveal() == "abc"


def test_mask_url_keeps_everything_but_the_password() -> None:
    """The masked URL still tells which server is meant."""
    assert mask_url("rediss://user:pw@host:6380/2") == "rediss://user:****@host:6380/2"
    assert mask_url("redis://localhost:6379") == "redis://localhost:6379"


def test_api_keys_are_parsed_with_scopes_and_never_shown() -> None:
    settings = Settings.from_env({"ROLESYNC_API_KEYS": f"app:{STRONG}:users, ops:{OTHER}"})
    app, ops = settings.api_keys
    assert (app.label, app.scopes, ops.scopes) == ("app", frozenset({"users"}), frozenset({"users", "customers"}))
    assert STRONG not in repr(settings)


STRONG, OTHER = "Hq8vN3kT6wZr1Lp5Xc9Ym2Bd", "Pz4tK7nW2sQx9Rh5Mv1Jc8Lg"


@pytest.mark.parametrize("raw", ["app:short", f"app:{STRONG}:admin", f":{STRONG}", "app:"])
def test_a_bad_api_key_entry_is_a_config_error_without_the_key(raw: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"ROLESYNC_API_KEYS": raw})
    assert STRONG not in str(caught.value)


def test_an_unknown_scope_is_named_with_the_valid_ones_not_blamed_on_the_key() -> None:
    key = secrets.token_urlsafe(32)
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"ROLESYNC_API_KEYS": f"a:{key}:usage"})
    said = str(caught.value)
    assert "unknown scope(s) usage;" in said
    assert "customers, grants:write, usage:write, users" in said
    assert "key" not in said.replace("ROLESYNC_API_KEYS", "")  # not about the key, which is fine
    assert key not in said


def test_the_postgres_url_is_optional_masked_and_checked() -> None:
    assert not Settings.from_env(FULL).postgres_url
    found = Settings.from_env({**FULL, "ROLESYNC_POSTGRES_URL": " postgresql://rs:pg-pass-9@db.internal:5432/rs "})
    assert found.postgres_url.reveal() == "postgresql://rs:pg-pass-9@db.internal:5432/rs"
    assert "pg-pass-9" not in repr(found)
    assert "db.internal" in repr(found)
    with pytest.raises(ConfigError, match="ROLESYNC_POSTGRES_URL must be a postgresql:// URL") as raised:
        Settings.from_env({**FULL, "ROLESYNC_POSTGRES_URL": "mysql://rs:pg-pass-9@db/rs"})
    assert "pg-pass-9" not in str(raised.value)


def test_every_variable_settings_reads_is_in_the_readme_table() -> None:
    """A new setting is documented where operators look: the README's configuration table."""
    source = (ROOT / "common" / "settings.py").read_text()
    readme = (ROOT / "README.md").read_text()
    table = "\n".join(line for line in readme.splitlines() if line.startswith("| `"))
    names = set(re.findall(r'"((?:KINDE|REDIS|ROLESYNC)_[A-Z0-9_]+)"', source))
    assert len(names) > 30  # the scan found the settings
    assert sorted(n for n in names if f"`{n}`" not in table) == []


def test_the_worker_metrics_bind_address_is_configurable() -> None:
    assert Settings.from_env({}).worker_metrics_host == "0.0.0.0"
    assert Settings.from_env({"ROLESYNC_WORKER_METRICS_HOST": "127.0.0.1"}).worker_metrics_host == "127.0.0.1"


def test_rolesync_mode_is_live_or_shadow_and_anything_else_is_one_line() -> None:
    assert Settings.from_env({}).mode == "live"
    assert Settings.from_env({"ROLESYNC_MODE": " Shadow "}).mode == "shadow"
    with pytest.raises(ConfigError, match="ROLESYNC_MODE must be live or shadow, got 'dry'"):
        Settings.from_env({"ROLESYNC_MODE": "dry"})
