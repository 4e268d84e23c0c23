"""The app's webhook: its settings, its Standard Webhooks signature and how its answers are judged (pure logic)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from common.errors import ConfigError, PermanentError, RetryableError
from common.settings import Secret, Settings, notify_key
from worker.outputs.notify_delivery import NotifyFailedError, judged, signed_headers

# The test vector published with the Standard Webhooks spec (its reference libraries test against it).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID, SPEC_TS, SPEC_BODY = "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_whsec_secret_is_base64_decoded_and_signs_the_specs_test_vector() -> None:
    key = notify_key(Secret(SPEC_SECRET))
    assert key == base64.b64decode(SPEC_SECRET.removeprefix("whsec_"))
    headers = signed_headers(key, SPEC_ID, SPEC_TS, SPEC_BODY)
    assert headers["webhook-signature"] == SPEC_SIGNATURE
    assert (headers["webhook-id"], headers["webhook-timestamp"]) == (SPEC_ID, "1614265330")


def test_a_raw_secret_is_used_as_its_bytes() -> None:
    headers = signed_headers(notify_key(Secret("plain-shared-secret")), "msg_1", 1700000000, "{}")
    by_hand = hmac.new(b"plain-shared-secret", b"msg_1.1700000000.{}", hashlib.sha256).digest()
    assert headers["webhook-signature"] == "v1," + base64.b64encode(by_hand).decode()
    at = datetime.fromtimestamp(1700000000, UTC)
    assert Webhook(b"plain-shared-secret").sign("msg_1", at, "{}") == headers["webhook-signature"]


def test_notify_settings_need_both_and_say_what_is_wrong_without_the_secret() -> None:
    url = "https://app.example/hooks?token=abc"
    ok = Settings.from_env({"ROLESYNC_NOTIFY_URL": url, "ROLESYNC_NOTIFY_SECRET": SPEC_SECRET})
    assert (ok.notify_url, ok.notify_max_retries) == (url, 20)
    assert "token=abc" not in repr(ok)
    assert "notify_secret=Secret('**********')" in repr(ok)
    with pytest.raises(ConfigError, match="ROLESYNC_NOTIFY_SECRET is empty"):
        Settings.from_env({"ROLESYNC_NOTIFY_URL": "https://app.example/hooks"})
    with pytest.raises(ConfigError, match="http"):
        Settings.from_env({"ROLESYNC_NOTIFY_URL": "app.example/hooks", "ROLESYNC_NOTIFY_SECRET": SPEC_SECRET})
    with pytest.raises(ConfigError, match="not base64") as bad:
        Settings.from_env({"ROLESYNC_NOTIFY_URL": "https://a.example", "ROLESYNC_NOTIFY_SECRET": "whsec_no!t*b64"})
    assert "no!t*b64" not in str(bad.value)
    assert Settings.from_env({}).notify_url == ""  # unset: no webhooks, nothing required


@pytest.mark.parametrize("status", [200, 201, 204, 299])
def test_2xx_is_delivered(status: int) -> None:
    assert judged(status) is None


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_timeouts_throttling_and_server_errors_are_retried(status: int) -> None:
    failure = judged(status)
    assert isinstance(failure, RetryableError)
    assert failure.reason == f"notify_{status}"


@pytest.mark.parametrize("status", [301, 400, 401, 403, 404, 410, 422])
def test_other_answers_are_permanent_notify_failed(status: int) -> None:
    failure = judged(status)
    assert isinstance(failure, NotifyFailedError)
    assert isinstance(failure, PermanentError)
    assert failure.reason == "notify_failed"
