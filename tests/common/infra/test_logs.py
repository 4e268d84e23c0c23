"""One JSON object per line; a value under a secret-sounding key is masked, whatever its case."""

from __future__ import annotations

import io
import json
import logging

import pytest
import structlog
from structlog.testing import capture_logs

from common.infra.logs import SteadyLogger, configure_logging

pytestmark = pytest.mark.usefixtures("restored_logging")  # tests/common/conftest.py


def test_values_under_secret_sounding_keys_are_masked_and_others_kept() -> None:
    out = io.StringIO()
    configure_logging("info", stream=out)
    log = structlog.get_logger("test")
    for _ in range(2):  # the key check is cached: the second line must be masked the same way
        log.info("token_fetched", client_secret="s3cret", Authorization="Bearer abc", access_token="t0k",
                 customer_id="customer_1")  # fmt: skip
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 2
    for line in lines:
        assert line["client_secret"] == line["Authorization"] == line["access_token"] == "**********"
        assert line["customer_id"] == "customer_1"
        assert line["event"] == "token_fetched"
    assert "s3cret" not in out.getvalue()


def test_a_steady_logger_follows_each_new_configuration_and_capture() -> None:
    first, second, log = io.StringIO(), io.StringIO(), SteadyLogger("test")
    configure_logging("info", stream=first)
    log.log(logging.INFO, "webhook_enqueued", url="redis://:pw@host/0", n=1)
    configure_logging("warning", stream=second)  # a new stream and level: bound again, not the old logger kept
    log.log(logging.INFO, "webhook_enqueued", n=2)
    log.log(logging.ERROR, "webhook_deferred", n=3)
    with capture_logs() as captured:
        log.log(logging.ERROR, "webhook_deferred", n=4)
    [one] = [json.loads(line) for line in first.getvalue().splitlines()]
    assert (one["event"], one["n"], one["url"]) == ("webhook_enqueued", 1, "redis://:**********@host/0")
    assert [json.loads(line)["n"] for line in second.getvalue().splitlines()] == [3]
    assert [(line["event"], line["n"]) for line in captured] == [("webhook_deferred", 4)]
