"""One JSON object per line; a value under a secret-sounding key is masked, whatever its case."""

from __future__ import annotations

import io
import json

import pytest
import structlog

from common.infra.logs import configure_logging

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
