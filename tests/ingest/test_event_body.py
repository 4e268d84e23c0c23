"""The queued message of a verified event: the token's payload text as it was signed, in Dramatiq's layout."""

from __future__ import annotations

import json
from typing import Any

import dramatiq
import httpx
import pytest
import redis

from common import keys
from common.infra import tracing
from common.messages import EVENTS_QUEUE, event_message
from ingest.enqueue import _head
from ingest.event_body import encoded_event
from ingest.verify import signed_payload
from tests.ingest.test_http import post
from tests.ingest.tokens import Signer, claims


def decoded(message_id: str, body: bytes) -> dict[str, Any]:
    data = dramatiq.get_encoder().decode(_head(False).encode() + body)
    assert data["message_id"] == data["options"]["redis_message_id"] == message_id
    return {k: v for k, v in data.items() if k not in ("message_id", "message_timestamp")}


def dramatiq_fields(event: dict[str, Any], trace: dict[str, str]) -> dict[str, Any]:
    """What Dramatiq's own encoder writes for `common.messages.event_message`, decoded."""
    encoder = dramatiq.get_encoder()
    data = encoder.decode(encoder.encode(event_message(event, "wh_1", 1.5, trace=trace).asdict()))
    return {k: v for k, v in data.items() if k not in ("message_id", "message_timestamp")}


@pytest.mark.parametrize("trace", [{}, {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}],
                         ids=["untraced", "traced"])  # fmt: skip
def test_the_written_message_is_what_dramatiq_would_encode(
    monkeypatch: pytest.MonkeyPatch, trace: dict[str, str]
) -> None:
    event = {**claims(), "note": "caf\u00e9 \u2603"}
    monkeypatch.setattr(tracing, "carrier", lambda: dict(trace))
    expected = dramatiq_fields(event, trace)
    expected["options"] = {**expected["options"], "redis_message_id": "?"}
    for payload in (None, json.dumps(event, indent=1, ensure_ascii=False)):
        message_id, body = encoded_event(event, "wh_1", 1.5, payload)
        found = decoded(message_id, body)
        assert {**found, "options": {**found["options"], "redis_message_id": "?"}} == expected
        assert dramatiq.Message.decode(_head(False).encode() + body).args == (
            event,
            {"webhook_id": "wh_1", "received_at": 1.5},
        )


def test_the_signed_payload_is_its_utf8_json_text_or_none(signer: Signer) -> None:
    text = '{"type": "x", "note": "caf\u00e9"}'
    assert signed_payload(signer.sign_raw(text.encode())) == text
    assert signed_payload(signer.sign_raw(text.encode("utf-16"))) is None  # json.loads reads it; splicing would not
    assert signed_payload(signer.sign_raw(b"\xef\xbb\xbf" + text.encode())) is None  # a BOM
    assert signed_payload("no-dots") is None


def _queued_text(redis_url: str) -> str:
    with redis.Redis.from_url(redis_url) as client:
        [message_id] = client.lrange(keys.queue_list(EVENTS_QUEUE), 0, -1)
        return bytes(client.hget(keys.queue_messages(EVENTS_QUEUE), message_id) or b"").decode()


def test_the_ingest_queues_the_payload_as_signed(
    http: httpx.Client, ingest_url: str, signer: Signer, redis_url: str
) -> None:
    event = {**claims(), "note": "caf\u00e9"}
    text = json.dumps(event, indent=1, ensure_ascii=False)  # not how json.dumps(claims) would write it
    assert post(http, ingest_url, signer.sign_raw(text.encode())).json() == {"status": "queued"}
    message = _queued_text(redis_url)
    assert f'"args":[{text},' in message
    assert json.loads(message)["args"][0] == event


def test_a_payload_json_reads_but_splicing_would_not_is_queued_re_encoded(
    http: httpx.Client, ingest_url: str, signer: Signer, redis_url: str
) -> None:
    event = claims()
    assert post(http, ingest_url, signer.sign_raw(json.dumps(event).encode("utf-16"))).json() == {"status": "queued"}
    assert json.loads(_queued_text(redis_url))["args"][0] == event
