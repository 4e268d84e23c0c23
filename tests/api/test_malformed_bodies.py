"""The API answers a body it cannot use with a 400, not a 500: JSON nested
past the interpreter's limit, a number too large for a float.

Real Valkey, real uvicorn for the API.
"""

from __future__ import annotations

import json

import httpx
import pytest

from api.app import create_app
from common.settings import Settings
from tests.ingest.servers import serving

pytestmark = pytest.mark.integration


SECRET = "workflow-Xq7vR2mK9pLs4Tz8Wn3cYb6H"


APP_KEY = "app-Ud6sY1gT8rKq3Zw5Mx9Ce2La"


# --- 1. a nested JSON body is a 500 at the guard's endpoint -------------------------------------------------


def test_a_deeply_nested_json_body_is_a_400_not_a_500(redis_url: str) -> None:
    """json.loads raises RecursionError (no ValueError) on a body nested deeper than the interpreter's
    limit; 20,000 levels fit in the endpoint's 64 KiB cap. The ingest already catches it (ingest/verify.py)."""
    env = {"REDIS_URL": redis_url, "ROLESYNC_WORKFLOW_SECRET": SECRET}
    app = create_app(Settings.from_env(env))
    nested = b"[" * 20_000 + b"]" * 20_000
    with serving(app) as url, httpx.Client(base_url=url, timeout=10.0) as api:
        answer = api.post("/v1/plan-selection", content=nested, headers={"x-rolesync-workflow-secret": SECRET})
    assert (answer.status_code, answer.json()["error"]["code"]) == (400, "bad_request")


# --- 6. a 400-digit number in a usage report is a 500 -------------------------------------------------------


@pytest.mark.parametrize("field", ["value", "at"])
def test_a_usage_report_with_a_number_too_large_for_a_float_is_a_400(redis_url: str, field: str) -> None:
    """JSON integers are unbounded: math.isfinite(10**400) raises OverflowError, not a verdict."""
    env = {"REDIS_URL": redis_url, "ROLESYNC_API_KEYS": f"app:{APP_KEY}:users+usage:write"}
    body = {"value": 1, field: 10**400}
    with serving(create_app(Settings.from_env(env))) as url, httpx.Client(base_url=url, timeout=10.0) as api:
        headers = {"Authorization": f"Bearer {APP_KEY}", "Content-Type": "application/json"}
        answer = api.put("/v1/customers/customer_1/usage/projects", content=json.dumps(body), headers=headers)
    assert (answer.status_code, answer.json()["error"]["code"]) == (400, "bad_request")
