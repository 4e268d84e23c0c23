"""The ingest over real HTTP: real uvicorn, a real JWKS endpoint, real Redis, real signed tokens."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
import redis
from structlog.testing import capture_logs

from common import keys
from common.infra.embedded_redis import EmbeddedRedis
from common.infra.layout import LAYOUT
from common.infra.version import release
from common.messages import EVENTS_QUEUE
from ingest.app import create_app
from tests.ingest.conftest import ingest_settings
from tests.ingest.servers import JwksEndpoint, serving
from tests.ingest.tokens import (
    Signer,
    ago,
    ahead,
    claims,
    deep_header,
    deep_header_object,
    deep_payload,
    hs256_with_public_key,
    jwks,
    tampered,
    unsigned,
)
from tests.procs import free_port, wait_until

QUEUE_LIST = keys.queue_list(EVENTS_QUEUE)


def post(http: httpx.Client, url: str, body: bytes | str, webhook_id: str = "wh_1") -> httpx.Response:
    headers = {"content-type": "application/jwt", "webhook-id": webhook_id}
    return http.post(f"{url}/webhooks/kinde", content=body, headers=headers)


def queued(redis_url: str) -> int:
    with redis.Redis.from_url(redis_url) as client:
        return int(client.llen(QUEUE_LIST))


def test_a_billing_event_is_queued(http: httpx.Client, ingest_url: str, signer: Signer, redis_url: str) -> None:
    response = post(http, ingest_url, signer.sign(claims()))
    assert (response.status_code, response.json()) == (200, {"status": "queued"})
    assert queued(redis_url) == 1


@pytest.mark.parametrize("event_type", ["user.created", "user.updated", "user.deleted", "organization.created"])
def test_link_events_are_queued(http: httpx.Client, ingest_url: str, signer: Signer, event_type: str) -> None:
    assert post(http, ingest_url, signer.sign(claims(event_type))).json() == {"status": "queued"}


def test_a_redelivery_is_a_duplicate_and_queued_once(
    http: httpx.Client, ingest_url: str, signer: Signer, redis_url: str
) -> None:
    token = signer.sign(claims())
    answers = [post(http, ingest_url, token, webhook_id="wh_same").json() for _ in range(3)]
    assert answers == [{"status": "queued"}, {"status": "duplicate"}, {"status": "duplicate"}]
    assert queued(redis_url) == 1


def test_events_we_do_not_act_on_are_ignored(
    http: httpx.Client, ingest_url: str, signer: Signer, redis_url: str
) -> None:
    response = post(http, ingest_url, signer.sign(claims("role.created")))
    assert (response.status_code, response.json()) == (200, {"status": "ignored"})
    assert queued(redis_url) == 0


REJECTIONS: list[tuple[str, Callable[[Signer, Signer], bytes | str], int, str]] = [
    ("alg none", lambda s, o: unsigned(claims(), s.kid), 401, "alg_not_allowed"),
    ("hs256 with public key", lambda s, o: hs256_with_public_key(claims(), s), 401, "alg_not_allowed"),
    ("unknown kid", lambda s, o: o.sign(claims()), 401, "unknown_kid"),
    ("tampered", lambda s, o: tampered(s.sign(claims()), event_id="event_other"), 401, "bad_signature"),
    ("wrong key", lambda s, o: o.sign(claims(), kid=s.kid), 401, "bad_signature"),
    ("expired", lambda s, o: s.sign(claims(at=ago(hours=73))), 400, "expired"),
    ("future", lambda s, o: s.sign(claims(at=ahead(minutes=10))), 400, "future_timestamp"),
    ("missing claims", lambda s, o: s.sign({"type": "customer.plan_assigned"}), 400, "missing_claims"),
    # 342 - 21 = 321 signature chars: no base64 length, so always undecodable. (A cut to 322 chars decodes
    # whenever the last char's unused bits happen to be zero, 1 time in 16, and is then "bad_signature".)
    ("truncated", lambda s, o: s.sign(claims())[:-21], 400, "malformed"),
    ("non-utf8", lambda s, o: b"\xff\xfe\xfa" + s.sign(claims()).encode(), 400, "malformed"),
    ("json body", lambda s, o: '{"type":"customer.plan_assigned","event_id":"e","data":{}}', 400, "malformed"),
    # Nested past the recursion limit: refused like any other unreadable token, never a 500.
    ("deep header", lambda s, o: deep_header(s), 400, "malformed"),
    ("deep header object", lambda s, o: deep_header_object(s), 400, "malformed"),
    ("deep signed payload", lambda s, o: deep_payload(s), 400, "malformed"),
]


@pytest.mark.parametrize(("name", "make", "status", "reason"), REJECTIONS, ids=[r[0] for r in REJECTIONS])
def test_each_rejection_reason(
    http: httpx.Client,
    ingest_url: str,
    signer: Signer,
    other_signer: Signer,
    redis_url: str,
    name: str,
    make: Callable[[Signer, Signer], bytes | str],
    status: int,
    reason: str,
) -> None:
    response = post(http, ingest_url, make(signer, other_signer))
    assert (response.status_code, response.json()["error"]) == (status, reason)
    assert queued(redis_url) == 0
    assert f'rolesync_ingest_verification_failures_total{{reason="{reason}"}} 1.0' in metrics(http, ingest_url)


def test_a_10_mb_body_is_refused_413(http: httpx.Client, ingest_url: str) -> None:
    response = post(http, ingest_url, b"a" * (10 * 1024 * 1024))
    assert response.status_code == 413
    assert 'rolesync_ingest_webhooks_total{outcome="too_large",type="unverified"} 1.0' in metrics(http, ingest_url)


def test_a_chunked_body_over_the_limit_is_refused_413(http: httpx.Client, ingest_url: str) -> None:
    chunks = (b"a" * 8192 for _ in range(20))
    response = http.post(f"{ingest_url}/webhooks/kinde", content=chunks)
    assert response.status_code == 413


def metrics(http: httpx.Client, url: str) -> str:
    return http.get(f"{url}/metrics").text


def test_metrics_count_outcomes_types_and_enqueue_latency(http: httpx.Client, ingest_url: str, signer: Signer) -> None:
    post(http, ingest_url, signer.sign(claims("customer.plan_changed")))
    text = metrics(http, ingest_url)
    assert 'rolesync_ingest_webhooks_total{outcome="queued",type="customer.plan_changed"} 1.0' in text
    assert "rolesync_ingest_enqueue_seconds_count 1.0" in text
    assert 'rolesync_ingest_jwks_refreshes_total{result="ok"} 1.0' in text


def test_one_log_line_per_webhook_without_the_token(http: httpx.Client, ingest_url: str, signer: Signer) -> None:
    event = claims()
    token = signer.sign(event)
    with capture_logs() as logs:
        post(http, ingest_url, token, webhook_id="wh_logged")
        post(http, ingest_url, tampered(token, type="x"), webhook_id="wh_bad")
    lines = [line for line in logs if line["event"].startswith("webhook_")]
    assert [(line["event"], line["outcome"], line["webhook_id"]) for line in lines] == [
        ("webhook_enqueued", "queued", "wh_logged"),
        ("webhook_rejected", "rejected", "wh_bad"),
    ]
    assert (lines[0]["event_id"], lines[0]["type"]) == (event["event_id"], event["type"])
    assert lines[1]["event_id"] is None
    assert lines[1]["reason"] == "bad_signature"
    assert all(isinstance(line["duration_ms"], float) for line in lines)
    assert token.split(".")[1] not in repr(logs)


def test_health_and_readiness(http: httpx.Client, ingest_url: str) -> None:
    assert http.get(f"{ingest_url}/healthz").json() == {"status": "ok", "version": release()}
    ready = http.get(f"{ingest_url}/readyz")
    assert (ready.status_code, ready.json()) == (
        200,
        {"status": "ready", "redis": "ok", "signing_keys": "loaded", "redis_data": "ok", "layout": LAYOUT},
    )


def test_key_rotation(
    http: httpx.Client, ingest_url: str, jwks_endpoint: JwksEndpoint, signer: Signer, other_signer: Signer
) -> None:
    jwks_endpoint.document = jwks(other_signer)  # Kinde rotates: the old key is gone, a new kid signs
    assert post(http, ingest_url, other_signer.sign(claims())).json() == {"status": "queued"}


def test_forged_kids_do_not_storm_the_jwks(
    http: httpx.Client, ingest_url: str, jwks_endpoint: JwksEndpoint, signer: Signer
) -> None:
    before = jwks_endpoint.fetches
    answers = {post(http, ingest_url, signer.sign(claims(), kid=f"forged-{n}")).status_code for n in range(20)}
    assert answers == {401}
    assert jwks_endpoint.fetches - before == 1


def test_cached_keys_keep_working_while_the_jwks_is_down(
    http: httpx.Client, ingest_url: str, jwks_endpoint: JwksEndpoint, signer: Signer
) -> None:
    jwks_endpoint.up = False
    assert post(http, ingest_url, signer.sign(claims())).json() == {"status": "queued"}


def test_with_no_key_and_the_jwks_down_the_answer_is_503_until_it_recovers(
    http: httpx.Client, redis_url: str, signer: Signer
) -> None:
    endpoint = JwksEndpoint(document=jwks(signer), up=False)
    with serving(endpoint.app()) as jwks_url:
        settings = ingest_settings(redis_url, f"{jwks_url}/.well-known/jwks.json")
        with serving(create_app(settings)) as url:
            response = post(http, url, signer.sign(claims()))
            assert (response.status_code, response.json()["error"]) == (503, "jwks_unavailable")
            assert http.get(f"{url}/readyz").json()["signing_keys"] == "missing"
            endpoint.up = True  # the background refresher retries every 2 s while no key is held
            wait_until(lambda: http.get(f"{url}/readyz").status_code == 200, timeout=10, what="keys to load")
            assert post(http, url, signer.sign(claims())).json() == {"status": "queued"}


@pytest.mark.integration  # its own Redis server, stopped mid-test
def test_redis_down_is_503_and_not_ready(http: httpx.Client, jwks_endpoint: JwksEndpoint, signer: Signer) -> None:
    with (
        EmbeddedRedis(port=free_port()) as server,
        serving(create_app(ingest_settings(server.url, jwks_endpoint.url))) as url,
    ):
        server.stop()
        response = post(http, url, signer.sign(claims()))
        assert (response.status_code, response.json()["error"]) == (503, "redis_unavailable")
        assert http.get(f"{url}/readyz").json()["redis"] == "unavailable"


@pytest.mark.integration  # its own Redis server, made to refuse writes
def test_redis_refusing_writes_is_503_nothing_half_written_and_the_retry_queued(
    http: httpx.Client, jwks_endpoint: JwksEndpoint, signer: Signer
) -> None:
    event = claims()
    with (
        EmbeddedRedis(port=free_port()) as server,
        serving(create_app(ingest_settings(server.url, jwks_endpoint.url))) as url,
    ):
        with redis.Redis.from_url(server.url) as client:
            client.set("ballast", "x" * 200_000)
            client.config_set("maxmemory", "1")  # noeviction: Redis refuses every write
            response = post(http, url, signer.sign(event))
            assert (response.status_code, response.json()["error"]) == (503, "redis_unavailable")
            assert client.exists(keys.seen_event(event["event_id"]), QUEUE_LIST) == 0
            client.config_set("maxmemory", "0")
        # Kinde's retry of the same event is queued, not answered "duplicate"
        assert post(http, url, signer.sign(event)).json() == {"status": "queued"}


def test_get_on_the_webhook_path_is_not_allowed(http: httpx.Client, ingest_url: str) -> None:
    assert http.get(f"{ingest_url}/webhooks/kinde").status_code == 405
