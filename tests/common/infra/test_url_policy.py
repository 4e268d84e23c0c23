"""Unsafe URLs are refused at start-up (common/infra/url_policy.py): https only, KINDE_DOMAIN a Kinde host.

http and loopback pass only with ROLESYNC_INSECURE_LOCAL=1 (a local sandbox), and every refusal is one
ConfigError naming the variable and its fix, never the secret a URL may carry.
"""

from __future__ import annotations

import pytest

from common.errors import ConfigError
from common.settings import Settings

LOCAL = {"ROLESYNC_INSECURE_LOCAL": "1"}
NOTIFY = {"ROLESYNC_NOTIFY_SECRET": "notify-Gz5bM8qR1wYt4Kp7Vh2Ns9Lc"}


def refused(env: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    return str(caught.value)


@pytest.mark.parametrize(
    "domain", ["https://acme.kinde.com", "https://acme-dev.au.kinde.com", "https://ACME.Kinde.com/"]
)
def test_a_kinde_host_over_https_is_accepted(domain: str) -> None:
    assert Settings.from_env({"KINDE_DOMAIN": domain}).kinde_domain == domain.rstrip("/")


def test_http_kinde_domain_is_refused_naming_the_variable_and_the_way_out() -> None:
    message = refused({"KINDE_DOMAIN": "http://acme.kinde.com"})
    assert message.startswith("KINDE_DOMAIN must be https")
    assert "ROLESYNC_INSECURE_LOCAL=1" in message


@pytest.mark.parametrize(
    "domain", ["https://acme.kinde.com.evil.example", "https://kinde.com.example", "https://evil.example"]
)
def test_a_host_that_is_not_kindes_is_refused_unless_listed(domain: str) -> None:
    message = refused({"KINDE_DOMAIN": domain})
    assert message.startswith("KINDE_DOMAIN")
    assert "not a Kinde host" in message
    assert "ROLESYNC_KINDE_CUSTOM_DOMAINS=" in message


def test_a_listed_custom_domain_is_accepted() -> None:
    env = {
        "KINDE_DOMAIN": "https://auth.example.com",
        "ROLESYNC_KINDE_CUSTOM_DOMAINS": "login.example.org, Auth.Example.com",
    }
    found = Settings.from_env(env)
    assert found.kinde_domain == "https://auth.example.com"
    assert found.kinde_custom_domains == frozenset({"login.example.org", "auth.example.com"})
    assert "hosts only" in refused({"ROLESYNC_KINDE_CUSTOM_DOMAINS": "https://auth.example.com"})


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("KINDE_JWKS_URL", "http://acme.kinde.com/.well-known/jwks.json"),
        ("KINDE_JWKS_URL", "https://127.0.0.1:8443/jwks"),
        ("KINDE_JWKS_URL", "https://localhost/jwks"),
        ("ROLESYNC_NOTIFY_URL", "http://app.example/hooks"),
        ("ROLESYNC_NOTIFY_URL", "https://169.254.169.254/latest/meta-data"),  # the cloud metadata service
        ("ROLESYNC_NOTIFY_URL", "https://[::1]/hooks"),
    ],
)
def test_http_and_loopback_urls_are_refused_naming_the_variable(name: str, url: str) -> None:
    message = refused({name: url, **NOTIFY})
    assert message.startswith(name)
    assert "ROLESYNC_INSECURE_LOCAL=1" in message


def test_insecure_local_allows_the_sandbox_over_http_on_loopback() -> None:
    env = {
        "KINDE_DOMAIN": "http://127.0.0.1:8700",
        "KINDE_JWKS_URL": "http://127.0.0.1:8700/.well-known/jwks.json",
        "ROLESYNC_NOTIFY_URL": "http://127.0.0.1:9000/hooks",
        **NOTIFY,
        **LOCAL,
    }
    found = Settings.from_env(env)
    assert (found.kinde_domain, found.insecure_local) == ("http://127.0.0.1:8700", True)
    assert Settings.from_env({}).insecure_local is False
    assert "ftp" in refused({"KINDE_DOMAIN": "ftp://127.0.0.1", **LOCAL})  # still an http(s) URL


@pytest.mark.parametrize("value", ["maybe", "2", "insecure"])
def test_an_unreadable_insecure_local_is_refused(value: str) -> None:
    assert refused({"ROLESYNC_INSECURE_LOCAL": value}).startswith("ROLESYNC_INSECURE_LOCAL must be 1 or 0")


def test_a_refused_url_never_shows_its_credentials_or_query() -> None:
    message = refused({"ROLESYNC_NOTIFY_URL": "http://user:pa55word@app.example/hooks?token=t0ken", **NOTIFY})
    assert "pa55word" not in message
    assert "t0ken" not in message
    assert "http://app.example" in message
