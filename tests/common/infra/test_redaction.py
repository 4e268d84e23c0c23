"""Every secret-bearing setting, written to each sink by its field name and its variable's name,
never shows its secret: log lines and customers' timelines share one word list and one function."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable
from dataclasses import fields
from typing import Any

import pytest
import structlog

from common.customers.history import entry
from common.infra.logs import configure_logging
from common.settings import Secret, Settings

# Each variable carrying a credential, with a value whose secret part is easy to look for.
SECRET_ENV = {
    "KINDE_CLIENT_SECRET": "sekrit-kinde-client-0001",
    "REDIS_URL": "redis://:sekrit-redis-0002@cache.internal:6379/0",
    "ROLESYNC_POSTGRES_URL": "postgresql://rolesync:sekrit-postgres-0003@db.internal:5432/rolesync",
    "ROLESYNC_API_KEYS": "dashboard:sekrit-api-key-000004",
    "ROLESYNC_NOTIFY_URL": "https://hooks:sekrit-notify-user-05@app.example/kinde?token=sekrit-notify-query-06",
    "ROLESYNC_NOTIFY_SECRET": "sekrit-notify-hmac-0007",
    "ROLESYNC_WORKFLOW_SECRET": "sekrit-workflow-00008",
}
SECRETS = tuple(re.findall(r"sekrit-[a-z]+(?:-[a-z]+)*-\d+", " ".join(SECRET_ENV.values())))

pytestmark = pytest.mark.usefixtures("restored_logging")  # tests/common/conftest.py


def revealed(value: Any) -> str:
    """A setting's value as a careless caller would pass it on: every Secret inside it revealed."""
    if isinstance(value, Secret):
        return value.reveal()
    if isinstance(value, tuple):
        return ",".join(revealed(v) for v in value)
    if hasattr(value, "__dataclass_fields__"):
        return ":".join(revealed(getattr(value, f.name)) for f in fields(value))
    return str(value)


def secret_bearing() -> dict[str, str]:
    """field name -> its revealed value, for every setting that carries one of the secrets above."""
    settings = Settings.from_env(SECRET_ENV)
    found = {f.name: revealed(getattr(settings, f.name)) for f in fields(settings)}
    return {name: value for name, value in found.items() if any(s in value for s in SECRETS)}


def logged(**values: Any) -> str:
    out = io.StringIO()
    configure_logging("info", stream=out)
    structlog.get_logger("test").info("settings_read", **values)
    logging.getLogger("foreign").warning("read", extra={"nested": {"settings": values}})
    return out.getvalue()


def timeline(**values: Any) -> str:
    return json.dumps([entry("webhook", **values), entry("pass", nested={"settings": values})])


def test_the_secret_bearing_settings_are_the_ones_this_test_feeds() -> None:
    assert set(secret_bearing()) == {"kinde_client_secret", "redis_url", "postgres_url", "api_keys", "notify_url",
                                     "notify_secret", "workflow_secret"}  # fmt: skip


@pytest.mark.parametrize("sink", [logged, timeline], ids=["log_line", "timeline"])
def test_no_sink_shows_a_secret_setting_by_field_or_variable_name(sink: Callable[..., str]) -> None:
    by_field = secret_bearing()
    written = sink(**by_field) + sink(**SECRET_ENV) + sink(**{k.lower(): v for k, v in SECRET_ENV.items()})
    shown = [s for s in SECRETS if s in written]
    assert shown == []  # was: a log line kept api_keys (and any URL's password) that the timeline dropped


def test_the_log_line_keeps_what_is_not_a_credential() -> None:
    line = json.loads(logged(redis_url=SECRET_ENV["REDIS_URL"], customer_id="customer_1").splitlines()[0])
    assert line["redis_url"] == "redis://:**********@cache.internal:6379/0"
    assert line["customer_id"] == "customer_1"


def test_free_text_shown_whole_masks_every_secret_assignment() -> None:
    from common.infra.redaction import MASK, masked_assignments

    text = "kinde said no: password=hunter2, api_token: abc123 & client_secret=s3 (user kp_1)"
    shown = masked_assignments(text)
    assert all(s not in shown for s in ("hunter2", "abc123", "s3 "))
    assert shown == f"kinde said no: password={MASK}, api_token: {MASK} & client_secret={MASK} (user kp_1)"
