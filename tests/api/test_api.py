"""The read API over real HTTP (uvicorn) and real Redis, on snapshots the worker's passes kept."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from api.app import create_app
from common.infra.layout import LAYOUT
from common.infra.version import release
from common.settings import Secret, Settings
from tests.ingest.servers import serving
from tests.worker.conftest import World, build_world
from tests.worker.convergence.test_snapshot import FEATURES
from tests.worker.events.test_handlers import OLD, billing, user_created
from worker.events.handlers import handle_event

ALL_KEY, USERS_KEY = "all-Wk3pZ8nQ5tRy2Lv7Hx4Jc9Bm", "users-Td6mV1sK9wPg4Nz8Qb3Xr7Hy"
KEYS = f"ops:{ALL_KEY},app:{USERS_KEY}:users"


@pytest.fixture
def world(redis_url: str) -> World:
    found = build_world(redis_url)
    found.kinde.features_by_plan = FEATURES
    found.kinde.add_user("kp_1", "customer_1")
    found.kinde.set_plan("customer_1", "plan_client")
    assert handle_event(found.deps, user_created("ev_u", "kp_1"), OLD) == "converged"
    return found


@pytest.fixture
def api(redis_url: str, world: World) -> Iterator[httpx.Client]:
    settings = Settings.from_env({"REDIS_URL": redis_url, "ROLESYNC_API_KEYS": KEYS})
    assert settings.redis_url == Secret(redis_url)
    with serving(create_app(settings)) as url, httpx.Client(base_url=url, timeout=5.0) as client:
        yield client


def auth(key: str = ALL_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_without_a_valid_key_the_answer_is_401_and_a_key_without_the_scope_403(api: httpx.Client) -> None:
    assert api.get("/v1/users/kp_1/entitlements").status_code == 401
    assert api.get("/v1/users/kp_1/entitlements", headers=auth("not-a-key-but-long-enough")).status_code == 401
    assert api.get("/v1/users/kp_1/entitlements", headers={"Authorization": ALL_KEY}).status_code == 401
    assert api.get("/v1/users/kp_1/entitlements", headers=auth(USERS_KEY)).status_code == 200
    refused = api.get("/v1/customers/customer_1", headers=auth(USERS_KEY))
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"
    assert api.get("/v1/customers/customer_1", headers=auth()).status_code == 200


def test_a_users_entitlements_are_what_the_pass_kept(api: httpx.Client) -> None:
    body = api.get("/v1/users/kp_1/entitlements", headers=auth()).json()
    [org] = body["organizations"]
    assert (org["org_code"], org["roles"]) == ("org_default", ["role_client"])
    assert {f["feature_code"]: f["limit_max"] for f in org["features"]} == {"api_calls": None, "seats": 5}
    assert [p["code"] for p in org["plans"]] == ["plan_client"]
    seats = api.get("/v1/users/kp_1/entitlements/seats", headers=auth()).json()
    assert (seats["entitled"], seats["organizations"][0]["limit_max"]) == (True, 5)
    assert api.get("/v1/users/kp_1/entitlements/storage", headers=auth()).json()["entitled"] is False
    other_org = api.get("/v1/users/kp_1/entitlements", params={"org_code": "org_x"}, headers=auth()).json()
    assert other_org["organizations"] == []


def test_an_unknown_user_is_404_and_a_known_user_with_nothing_200_with_empty_lists(
    api: httpx.Client, world: World
) -> None:
    missing = api.get("/v1/users/kp_nobody/entitlements", headers=auth())
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "user_not_found"
    assert api.get("/v1/users/kp_nobody/entitlements/seats", headers=auth()).status_code == 404
    assert api.get("/v1/customers/customer_nobody", headers=auth()).status_code == 404

    world.kinde.set_plan("customer_1", None)
    handle_event(world.deps, billing("ev_cancel", "customer_1"), OLD)
    body = api.get("/v1/users/kp_1/entitlements", headers=auth())
    assert body.status_code == 200
    [org] = body.json()["organizations"]
    assert (org["plans"], org["features"], org["roles"]) == ([], [], [])


def test_an_etag_answers_304_until_the_snapshot_changes(api: httpx.Client, world: World) -> None:
    first = api.get("/v1/users/kp_1/entitlements", headers=auth())
    etag = first.headers["etag"]
    again = api.get("/v1/users/kp_1/entitlements", headers={**auth(), "If-None-Match": etag})
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)

    world.kinde.set_plan("customer_1", "plan_subscriber")
    handle_event(world.deps, billing("ev_down", "customer_1"), OLD)
    changed = api.get("/v1/users/kp_1/entitlements", headers={**auth(), "If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert changed.json()["organizations"][0]["roles"] == ["role_subscriber"]


def test_the_customer_shows_link_plans_features_and_standing(api: httpx.Client) -> None:
    body = api.get("/v1/customers/customer_1", headers=auth()).json()
    assert body["link"]["user_id"] == "kp_1"
    assert [p["code"] for p in body["plans"]] == ["plan_client"]
    assert body["plans"][0]["subscribed_on"]
    assert {f["feature_code"] for f in body["features"]} == {"api_calls", "seats"}
    assert (body["roles"], body["payment_standing"]) == (["role_client"], "unknown")


def test_openapi_health_readiness_and_metrics_need_no_key(api: httpx.Client) -> None:
    spec = api.get("/openapi.json").json()
    assert "/v1/users/{user_id}/entitlements/{feature_code}" in spec["paths"]
    assert api.get("/healthz").json() == {"status": "ok", "version": release()}
    assert api.get("/readyz").json() == {"status": "ready", "redis": "ok", "redis_data": "ok", "layout": LAYOUT}
    api.get("/v1/users/kp_1/entitlements", headers=auth())
    assert 'rolesync_api_requests_total{route="user_entitlements",status="200"}' in api.get("/metrics").text


def test_readiness_fails_when_redis_is_unreachable() -> None:
    settings = Settings.from_env({"REDIS_URL": "redis://127.0.0.1:1/0", "ROLESYNC_API_KEYS": KEYS})
    with serving(create_app(settings)) as url, httpx.Client(base_url=url, timeout=5.0) as client:
        assert client.get("/readyz").status_code == 503
        assert client.get("/v1/users/kp_1/entitlements", headers=auth()).status_code == 503


def test_usage_shows_on_the_feature_and_the_customer_and_the_timeline_is_served(
    api: httpx.Client, world: World
) -> None:
    data = {"feature_code": "seats", "meter_value": "3", "meter_usage_timestamp": "2026-11-22T10:00:00Z"}
    handle_event(world.deps, billing("ev_use", "customer_1", "customer.meter_usage_updated", **data), OLD)
    seats = api.get("/v1/users/kp_1/entitlements/seats", headers=auth()).json()["organizations"][0]
    assert [(u["customer_id"], u["value"]) for u in seats["usage"]] == [("customer_1", 3.0)]
    assert api.get("/v1/customers/customer_1", headers=auth()).json()["usage"][0]["value"] == 3.0
    timeline = api.get("/v1/customers/customer_1/history", headers=auth()).json()["entries"]
    assert [e["kind"] for e in timeline[:2]] == ["webhook", "pass"]  # newest first: the pass, then its webhook
    assert any(e["kind"] == "webhook" and e["event_id"] == "ev_use" for e in timeline)
    assert api.get("/v1/customers/customer_nobody/history", headers=auth()).status_code == 404
