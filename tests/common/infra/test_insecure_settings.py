"""Insecure settings are said at every start-up and by `rolesync status` (common/infra/insecure_settings.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from structlog.testing import capture_logs

from common.infra.insecure_settings import insecure_warnings, log_insecure_settings
from common.infra.url_policy import INSECURE_WARNING
from common.settings import Secret, Settings

PASSWORD = "pw-Jt5wQ9zL2xVk7Rm4Pc8Hn3Fb"
PLAIN_REDIS = f"redis://:{PASSWORD}@redis.internal:6379/0"
UNCHECKED_REDIS = f"rediss://:{PASSWORD}@redis.internal:6380/0?ssl_cert_reqs=none"
REQUIRE_POSTGRES = f"postgresql://rolesync:{PASSWORD}@db.internal/rolesync?sslmode=require"


def settings(redis: str = "redis://127.0.0.1:6379/0", postgres: str = "", local: bool = False) -> Settings:
    return Settings(redis_url=Secret(redis), postgres_url=Secret(postgres), insecure_local=local)


def test_verified_or_loopback_settings_say_nothing() -> None:
    assert insecure_warnings(settings()) == []
    verified = settings(f"rediss://:{PASSWORD}@redis.internal:6380/0", f"postgresql://u:{PASSWORD}@db.internal/x"
                        "?sslmode=verify-full")  # fmt: skip
    assert insecure_warnings(verified) == []


def test_each_insecure_setting_is_one_sentence_naming_its_variable_and_host_never_the_password() -> None:
    found = insecure_warnings(settings(PLAIN_REDIS, REQUIRE_POSTGRES, local=True))
    assert found[0] == INSECURE_WARNING
    assert found[1].startswith("REDIS_URL: plain redis:// to redis.internal")
    assert found[2].startswith("ROLESYNC_POSTGRES_URL: sslmode=require to db.internal does not verify")
    assert len(found) == 3
    assert PASSWORD not in " ".join(found)
    assert insecure_warnings(settings(UNCHECKED_REDIS)) == [
        "REDIS_URL: ssl_cert_reqs=none to redis.internal does not verify the server's certificate"
    ]


def test_each_is_logged_as_a_warning() -> None:
    with capture_logs() as logs:
        log_insecure_settings(settings(PLAIN_REDIS, local=True))
    assert [(e["event"], e["log_level"]) for e in logs] == [("insecure_setting_found", "warning")] * 2


@pytest.mark.integration  # runs `rolesync worker` as its own process
def test_the_worker_says_so_in_its_log_as_it_starts() -> None:
    """Before anything else: here Redis is unreachable, so the start ends right after (exit 3, one line)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KINDE_", "REDIS_", "ROLESYNC_"))}
    kinde = {"KINDE_DOMAIN": "https://acme.kinde.com", "KINDE_CLIENT_ID": "id", "KINDE_CLIENT_SECRET": "x" * 32}
    env = {**clean, **kinde, "REDIS_URL": PLAIN_REDIS.replace("redis.internal", "redis.invalid")}
    result = subprocess.run([sys.executable, "-m", "cli", "worker"], env=env, capture_output=True, text=True,
                            timeout=120, check=False)  # fmt: skip
    lines = [json.loads(line) for line in (result.stdout + result.stderr).splitlines() if line.startswith("{")]
    said = [line["warning"] for line in lines if line.get("event") == "insecure_setting_found"]
    assert said == ["REDIS_URL: plain redis:// to redis.invalid: the password and the queue cross the network in clear"]
    assert PASSWORD not in result.stdout + result.stderr
