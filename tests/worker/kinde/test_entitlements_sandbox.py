"""The real adapter reads a customer's entitlements from the sandbox over HTTP, every page, in Kinde's shape."""

from __future__ import annotations

from pathlib import Path

import httpx

from common.entitlements.customer import UNLIMITED, features_of
from common.infra.connections import redis_client
from common.settings import Secret, Settings
from tests.sandbox_fixture import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, running_sandbox
from worker.kinde.api import HttpxKindeApi
from worker.kinde.ratelimit import RedisKindeGate
from worker.kinde.token import shared_tokens


def test_every_page_of_entitlements_is_read_with_the_plans(tmp_path: Path, redis_url: str) -> None:
    with running_sandbox(tmp_path) as sandbox:
        features = {f"feature_{n:03d}": n for n in range(150)}  # 2 pages of 100
        features["api_calls"] = UNLIMITED
        sandbox.client.define_plan("plan_big", features)
        user = sandbox.client.create_user(send_webhook=False)
        sandbox.client.change_plan(user["customer_id"], "plan_big")
        settings = Settings(kinde_domain=sandbox.url, kinde_client_id=SANDBOX_CLIENT_ID,
                            kinde_client_secret=Secret(SANDBOX_CLIENT_SECRET), redis_url=Secret(redis_url))  # fmt: skip
        client, http = redis_client(settings), httpx.Client(timeout=10.0)
        tokens = shared_tokens(client, http, settings, on_fetch=lambda: None)
        kinde = HttpxKindeApi(http, sandbox.url, tokens, RedisKindeGate(client, 1000.0))

        answer = kinde.entitlements(user["customer_id"])

        reads = [c for c in sandbox.client.calls() if "/billing/entitlements" in str(c.get("path"))]
        assert len(reads) == 2, reads
        assert [p["code"] for p in answer.plans] == ["plan_big"]
        found = {f.code: f for f in features_of(answer.rows)}
        assert len(found) == 151
        assert found["feature_042"].limit_max == 42
        assert found["api_calls"].unlimited
