"""Shared secrets must carry 128 bits and no pattern (common/infra/secret_strength.py), checked once at start-up.

API keys, the workflow secret and the notify secret: a weak one is one ConfigError line naming the
variable (and the key's label), why, and how to make a good one; it never quotes the value.
"""

from __future__ import annotations

import base64
import secrets

import pytest

from common.errors import ConfigError
from common.infra.secret_strength import HOW, weak_key, weakness
from common.settings import Settings

WEAK = [
    "short-one",  # too short
    "abcdefghijklmnop1234",  # 20 characters of a small alphabet: ~103 bits
    "a" * 40,  # long, one character
    "hunter2" * 4,  # one block repeated
    "workflow-secret-0123456789",  # a run of consecutive characters
    "0123456789abcdef0123456789abcdef",
]


@pytest.mark.parametrize("value", WEAK)
def test_short_or_patterned_values_are_weak(value: str) -> None:
    assert weakness(value)


def test_what_secrets_makes_is_strong() -> None:
    made = [secrets.token_urlsafe(32) for _ in range(500)] + [secrets.token_hex(32) for _ in range(500)]
    assert [v for v in made if weakness(v)] == []
    assert weakness("Hq8vN3kT6wZr1Lp5Xc9Ym2Bd") is None  # 24 mixed characters: ~143 bits


def test_a_raw_key_needs_16_bytes_that_are_not_a_pattern() -> None:
    assert weak_key(secrets.token_bytes(32)) is None
    assert weak_key(secrets.token_bytes(12))
    assert weak_key(b"\x00" * 32)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"ROLESYNC_WORKFLOW_SECRET": "workflow-secret-0123456789"}, "ROLESYNC_WORKFLOW_SECRET"),
        ({"ROLESYNC_API_KEYS": "app:app-key-0123456789abcdef"}, "ROLESYNC_API_KEYS: the key of entry 'app'"),
        ({"ROLESYNC_NOTIFY_URL": "https://app.example/hooks", "ROLESYNC_NOTIFY_SECRET": "notify-secret-0123456789"},
         "ROLESYNC_NOTIFY_SECRET"),
        ({"ROLESYNC_NOTIFY_URL": "https://app.example/hooks",
          "ROLESYNC_NOTIFY_SECRET": "whsec_" + base64.b64encode(b"0123456789").decode()}, "ROLESYNC_NOTIFY_SECRET"),
    ],
)  # fmt: skip
def test_a_weak_secret_stops_start_up_saying_how_to_make_one(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    message = str(caught.value)
    assert message.startswith(named)
    assert "too weak" in message
    assert HOW in message
    assert not any(value in message for value in env.values() if not value.startswith("https"))


def test_strong_secrets_start() -> None:
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    env = {
        "ROLESYNC_WORKFLOW_SECRET": secrets.token_urlsafe(32),
        "ROLESYNC_API_KEYS": f"app:{secrets.token_urlsafe(32)}",
        "ROLESYNC_NOTIFY_URL": "https://app.example/hooks",
        "ROLESYNC_NOTIFY_SECRET": f"whsec_{key}",
    }
    assert Settings.from_env(env).api_keys[0].label == "app"
