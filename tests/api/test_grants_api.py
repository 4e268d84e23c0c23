"""`/v1/grants` over real HTTP (uvicorn) and real Redis: scopes, bad input, the audit trail, the schedule."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import httpx
import pytest
import redis

from api.app import create_app
from common import keys
from common.entitlements.manual_grants import Due, RedisHandGrantStore
from common.settings import Settings
from tests.ingest.servers import serving
from tests.procs import ROOT

WRITER, READER = secrets.token_urlsafe(32), secrets.token_urlsafe(32)


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    found = redis.Redis.from_url(redis_url, decode_responses=True)
    found.sadd(keys.user_customers("kp_1"), "cus_1")  # a user the service knows: a billing customer linked to it
    yield found
    found.close()


@pytest.fixture
def api(redis_url: str, client: redis.Redis) -> Iterator[httpx.Client]:
    env = {"REDIS_URL": redis_url, "ROLESYNC_API_KEYS": f"support:{WRITER}:users+grants:write,app:{READER}:users",
           "ROLESYNC_PLANS": str(ROOT / "plans.toml")}  # fmt: skip
    with serving(create_app(Settings.from_env(env))) as url, httpx.Client(base_url=url, timeout=10.0) as http:
        yield http


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


PARTNER = {"user_id": "kp_1", "roles": ["role_client"], "reason": "partner", "until": 4070908800}  # 2099-01-01


def test_a_grant_put_by_a_writer_is_stored_scheduled_and_audited_with_the_keys_label(
    api: httpx.Client, client: redis.Redis
) -> None:
    answer = api.put("/v1/grants/hg_partner", json=PARTNER, headers=auth(WRITER))

    assert answer.status_code == 200, answer.text
    assert answer.json()["grant"]["by"] == "support"
    assert Due("changed", "hg_partner", "", "kp_1") in RedisHandGrantStore(client).due(4e9)
    (audited,) = [json.loads(e) for e in client.lrange(keys.AUDIT_LOG, 0, -1)]
    assert (audited["action"], audited["by"], audited["reason"], audited["grant"]) == (
        "grants_add", "support", "partner", "hg_partner")  # fmt: skip
    listed = api.get("/v1/grants", params={"user_id": "kp_1"}, headers=auth(READER)).json()["grants"]
    assert [g["grant_id"] for g in listed] == ["hg_partner"]
    assert api.get("/v1/grants/hg_partner", headers=auth(READER)).json()["grant"]["until"] == 4070908800.0


def test_a_reading_key_cannot_grant_and_a_missing_key_is_401(api: httpx.Client, client: redis.Redis) -> None:
    assert api.put("/v1/grants/hg_1", json=PARTNER, headers=auth(READER)).status_code == 403
    allowed = api.post("/v1/grants/hg_1", json=PARTNER, headers=auth(WRITER)).headers["allow"]
    assert sorted(allowed.split(", ")) == ["DELETE", "GET", "HEAD", "PUT"]
    assert api.delete("/v1/grants/hg_1", params={"reason": "x"}, headers=auth(READER)).status_code == 403
    assert api.get("/v1/grants").status_code == 401
    assert client.keys("rolesync:hand-grant*") == []


@pytest.mark.parametrize(
    ("body", "said", "status"),
    [
        ({**PARTNER, "roles": ["role_admin"]}, "role_admin are not managed", 409),
        ({**PARTNER, "until": 946684800}, "not in the future", 409),
        ({**PARTNER, "reason": " \t"}, "`$.reason`", 400),
        ({**PARTNER, "until": "2027-01-01"}, "`$.until`", 400),
        ({**PARTNER, "roles": []}, "`$.roles`", 400),
        ({**PARTNER, "roles": "role_client"}, "Expected `array`, got `str` - at `$.roles`", 400),
        ({**PARTNER, "user_id": 7}, "Expected `str`, got `int` - at `$.user_id`", 400),
        (["not", "an", "object"], "Expected `object`, got `array`", 400),
        ({**PARTNER, "extra": 1}, "unknown field `extra`", 400),
        ({**PARTNER, "user_id": "someone"}, "`$.user_id`", 400),
    ],
)
def test_a_bad_grant_is_refused_saying_what_is_wrong_and_nothing_is_stored(
    api: httpx.Client, client: redis.Redis, body: object, said: str, status: int
) -> None:
    answer = api.put("/v1/grants/hg_1", json=body, headers=auth(WRITER))

    assert answer.status_code == status
    assert said in answer.json()["error"]["message"]
    assert client.keys("rolesync:hand-grant*") == []
    assert client.llen(keys.AUDIT_LOG) == 0


def test_hostile_bodies_are_400_never_500(api: httpx.Client) -> None:
    for content in (b"{", b"[" * 100_000, b"x" * 10_000):
        answer = api.put("/v1/grants/hg_1", content=content, headers=auth(WRITER))
        assert answer.status_code == 400, content[:10]


def test_delete_needs_a_reason_and_an_unknown_grant_is_404(api: httpx.Client, client: redis.Redis) -> None:
    assert api.put("/v1/grants/hg_1", json=PARTNER, headers=auth(WRITER)).status_code == 200

    assert api.delete("/v1/grants/hg_1", headers=auth(WRITER)).status_code == 400
    gone = api.delete("/v1/grants/hg_1", params={"reason": "partnership ended"}, headers=auth(WRITER))
    assert gone.status_code == 200
    assert gone.json()["removed"]["grant_id"] == "hg_1"
    assert api.delete("/v1/grants/hg_1", params={"reason": "again"}, headers=auth(WRITER)).status_code == 404
    assert api.get("/v1/grants/hg_1", headers=auth(READER)).status_code == 404
    assert [json.loads(e)["action"] for e in client.lrange(keys.AUDIT_LOG, 0, -1)] == ["grants_remove", "grants_add"]


def test_expiring_within_filters_and_a_bad_duration_is_400(api: httpx.Client) -> None:
    api.put("/v1/grants/hg_long", json=PARTNER, headers=auth(WRITER))
    api.put("/v1/grants/hg_open", json={**PARTNER, "until": None}, headers=auth(WRITER))
    assert api.get("/v1/grants", params={"expiring_within": ""}, headers=auth(READER)).status_code == 400

    assert api.get("/v1/grants", params={"expiring_within": "7d"}, headers=auth(READER)).json()["grants"] == []
    everything = api.get("/v1/grants", headers=auth(READER)).json()["grants"]
    assert [g["grant_id"] for g in everything] == ["hg_long", "hg_open"]
    assert api.get("/v1/grants", params={"expiring_within": "soon"}, headers=auth(READER)).status_code == 400


def stored_nothing(client: redis.Redis) -> bool:
    return client.keys("rolesync:hand-grant*") == [] and client.llen(keys.AUDIT_LOG) == 0


@pytest.mark.parametrize(
    ("user_id", "deleted", "said"),
    [("kp_typo", False, "the service has never seen it"), ("kp_1", True, "Kinde deleted it")],
    ids=["never-seen", "deleted"],
)
def test_a_grant_to_a_user_the_service_does_not_know_is_404_and_nothing_is_stored(
    api: httpx.Client, client: redis.Redis, user_id: str, deleted: bool, said: str
) -> None:
    if deleted:
        client.set(keys.deleted_user(user_id), "1")

    answer = api.put("/v1/grants/hg_1", json={**PARTNER, "user_id": user_id}, headers=auth(WRITER))

    assert answer.status_code == 404, answer.text
    assert answer.json()["error"]["code"] == "user_not_found"
    assert said in answer.json()["error"]["message"]
    assert stored_nothing(client)


def test_an_org_grant_needs_the_user_seen_in_that_org_else_409(api: httpx.Client, client: redis.Redis) -> None:
    in_org = {**PARTNER, "org_code": "org_acme"}

    refused = api.put("/v1/grants/hg_1", json=in_org, headers=auth(WRITER))
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "not_a_member"
    assert "not a member of org org_acme" in refused.json()["error"]["message"]
    assert stored_nothing(client)

    client.sadd(keys.org_members("org_acme"), "kp_1")  # the org's cached members list the user
    assert api.put("/v1/grants/hg_1", json=in_org, headers=auth(WRITER)).status_code == 200
    client.set(keys.deleted_org("org_acme"), "1")
    gone = api.put("/v1/grants/hg_2", json=in_org, headers=auth(WRITER))
    assert (gone.status_code, "Kinde deleted the org" in gone.text) == (409, True)


def test_a_user_with_no_customer_the_service_saw_in_a_user_event_can_be_granted(
    api: httpx.Client, client: redis.Redis
) -> None:
    client.sadd(keys.user_orgs("kp_staff"), "org_default")  # user.created's look-up listed its orgs; no customer

    answer = api.put("/v1/grants/hg_staff", json={**PARTNER, "user_id": "kp_staff"}, headers=auth(WRITER))

    assert answer.status_code == 200, answer.text
