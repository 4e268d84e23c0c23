"""`entitlements.updated` webhooks as shipped: a real `rolesync worker` POSTs them to a real local receiver.

The sandbox over HTTP, the uvicorn ingest, one Dramatiq worker process with ROLESYNC_NOTIFY_URL set,
real Redis, and a stdlib HTTP server in a thread standing for the app. Every request the receiver
gets is checked with the `standardwebhooks` library *and* with an HMAC computed here by hand.
Retry and dead-letter cases put a notification straight on the queue, as a pass would.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner
from dramatiq.brokers.redis import RedisBroker
from standardwebhooks.webhooks import Webhook

from cli.main import cli
from common import keys
from common.entitlements.grants import Target
from common.entitlements.snapshots import TargetSnapshot
from common.infra.deadletters import NOTIFY_FAILED, RedisDeadLetterStore
from common.messages import NOTIFY_QUEUE, notify_message
from sandbox.config import PLANS_TOML, rolesync_env
from tests.procs import Proc, free_port, http_ok, rolesync, wait_until
from tests.sandbox_fixture import running_sandbox
from worker.outputs.notify import NOTIFICATION_TYPE, notification

pytestmark = pytest.mark.e2e
NOTIFY_DB = 11
KEY = b"notify-test-key-" + uuid.uuid4().bytes
SECRET = "whsec_" + base64.b64encode(KEY).decode()
BUDGET = 2  # failures before notify_failed: three attempts, about 1 s + 2 s of back-off


@dataclass
class Receiver:
    """The app: records every request; answers each webhook id from its script, then 200."""

    got: list[tuple[dict[str, str], str]] = field(default_factory=list)
    script: dict[str, list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, headers: dict[str, str], body: str) -> int:
        with self.lock:
            self.got.append((headers, body))
            planned = self.script.get(headers.get("webhook-id", ""), [])
            return planned.pop(0) if planned else 200

    def of(self, webhook_id: str) -> list[tuple[dict[str, str], str]]:
        with self.lock:
            return [(h, b) for h, b in self.got if h.get("webhook-id") == webhook_id]

    def bodies_for(self, user_id: str) -> list[dict[str, Any]]:
        with self.lock:
            bodies = [json.loads(b) for _, b in self.got]
        return [b for b in bodies if b["data"].get("user_id") == user_id]


def serve(receiver: Receiver) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
            status = receiver.answer({k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}/hooks/rolesync"


@dataclass(frozen=True)
class Pipe:
    receiver: Receiver
    kinde: Any
    redis: redis.Redis
    broker: RedisBroker
    env: dict[str, str]


@pytest.fixture(scope="module")
def pipe(redis_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipe]:
    tmp = tmp_path_factory.mktemp("notify")
    redis_url = f"{redis_server_url}/{NOTIFY_DB}"
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.flushdb()
    receiver = Receiver()
    server, url = serve(receiver)
    ingest_port = free_port()
    ingest_url = f"http://127.0.0.1:{ingest_port}"
    with running_sandbox(tmp, webhook_url=f"{ingest_url}/webhooks/kinde") as sandbox:
        env = _env(tmp, redis_url, sandbox.url, url)
        procs = [
            Proc("ingest", rolesync("ingest", "--port", str(ingest_port)), env, tmp),
            Proc("worker", rolesync("worker", "--processes", "1", "--threads", "4"), env, tmp),
        ]
        broker = RedisBroker(client=redis.Redis.from_url(redis_url))
        try:
            wait_until(lambda: http_ok(f"{ingest_url}/readyz"), timeout=30, what="ingest ready")
            yield Pipe(receiver, sandbox.client, client, broker, env)
        finally:
            for proc in procs:
                proc.stop()
            broker.close()
            server.shutdown()


def _env(tmp: Path, redis_url: str, sandbox_url: str, notify_url: str) -> dict[str, str]:
    return {
        **rolesync_env(redis_url, sandbox_url, tmp, PLANS_TOML),
        "KINDE_API_RPS": "50",
        "ROLESYNC_NOTIFY_URL": notify_url,
        "ROLESYNC_NOTIFY_SECRET": SECRET,
        "ROLESYNC_NOTIFY_MAX_RETRIES": str(BUDGET),
    }


def by_hand(headers: dict[str, str], body: str) -> bool:
    """The Standard Webhooks signature, computed independently of the library the worker signs with."""
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.{body}".encode()
    expected = "v1," + base64.b64encode(hmac.new(KEY, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(expected, s) for s in headers["webhook-signature"].split(" "))


def genuine(headers: dict[str, str], body: str) -> bool:
    Webhook(SECRET).verify(body, headers)  # raises unless signed with SECRET and timestamped within 5 min
    return by_hand(headers, body) and headers["webhook-timestamp"].isdigit()


def queued(pipe: Pipe, user_id: str, script: list[int]) -> str:
    """Queue a notification as a pass would; the receiver answers it with `script`, then 200."""
    snapshot = TargetSnapshot(Target("org_notify", user_id), ("role_subscriber",), (), time.time())
    sent = notification(snapshot.target, snapshot, time.time())
    pipe.receiver.script[sent["event_id"]] = list(script)
    pipe.broker.enqueue(notify_message(sent))
    return str(sent["event_id"])


def test_a_plan_change_reaches_the_app_as_a_signed_webhook(pipe: Pipe) -> None:
    user = pipe.kinde.create_user(email=f"{uuid.uuid4().hex[:8]}@example.com")
    wait_until(lambda: pipe.redis.exists(keys.customer_link(user["customer_id"])), timeout=30, what="link learned")
    pipe.kinde.change_plan(user["customer_id"], "plan_subscriber")
    got = wait_until(lambda: pipe.receiver.bodies_for(user["id"]), timeout=30, what="the webhook")
    assert got[0]["type"] == NOTIFICATION_TYPE
    assert got[0]["data"]["roles"] == ["role_subscriber"]
    assert [p["code"] for p in got[0]["data"]["plans"]] == ["plan_subscriber"]
    with pipe.receiver.lock:
        requests = [(h, b) for h, b in pipe.receiver.got if json.loads(b)["data"].get("user_id") == user["id"]]
    assert all(genuine(h, b) for h, b in requests)
    assert all(h["content-type"] == "application/json" for h, _ in requests)


def test_a_receiver_failing_then_recovering_gets_the_same_webhook_id_each_time(pipe: Pipe) -> None:
    webhook_id = queued(pipe, f"kp_{uuid.uuid4().hex[:8]}", [503, 500])
    wait_until(lambda: len(pipe.receiver.of(webhook_id)) == 3, timeout=60, what="two failures, then the delivery")
    attempts = pipe.receiver.of(webhook_id)
    assert all(genuine(h, b) for h, b in attempts)  # each attempt signed afresh with its own timestamp
    assert len({b for _, b in attempts}) == 1  # the same body every time
    wait_until(lambda: _idle(pipe), timeout=30, what="the notify queue idle")
    assert RedisDeadLetterStore(pipe.redis).get(webhook_id) is None


def test_a_receiver_failing_for_good_ends_in_the_dead_letter_store_and_replays_with_its_id(pipe: Pipe) -> None:
    webhook_id = queued(pipe, f"kp_{uuid.uuid4().hex[:8]}", [500] * (BUDGET + 1))
    store = RedisDeadLetterStore(pipe.redis)
    record = wait_until(lambda: store.get(webhook_id), timeout=60, what="the dead letter")
    assert (record.reason, record.event_type, record.attempts) == (NOTIFY_FAILED, NOTIFICATION_TYPE, BUDGET + 1)
    assert len(pipe.receiver.of(webhook_id)) == BUDGET + 1
    assert SECRET.removeprefix("whsec_") not in record.to_json()

    listed = CliRunner().invoke(cli, ["dlq", "list", "--reason", NOTIFY_FAILED], env=pipe.env)
    assert webhook_id in listed.output
    replayed = CliRunner().invoke(
        cli,
        ["dlq", "replay", webhook_id, "--reason", "the app's endpoint is fixed"],
        env=pipe.env,
        catch_exceptions=False,
    )
    assert replayed.exit_code == 0, replayed.output
    wait_until(lambda: len(pipe.receiver.of(webhook_id)) == BUDGET + 2, timeout=30, what="the replayed webhook")
    assert genuine(*pipe.receiver.of(webhook_id)[-1])
    assert store.get(webhook_id) is None


def test_a_refusal_is_not_retried(pipe: Pipe) -> None:
    webhook_id = queued(pipe, f"kp_{uuid.uuid4().hex[:8]}", [400])
    store = RedisDeadLetterStore(pipe.redis)
    record = wait_until(lambda: store.get(webhook_id), timeout=30, what="the dead letter")
    assert (record.reason, record.attempts) == (NOTIFY_FAILED, 1)
    assert "400" in record.last_error
    assert len(pipe.receiver.of(webhook_id)) == 1


def test_worker_logs_never_show_the_secret(pipe: Pipe, tmp_path_factory: pytest.TempPathFactory) -> None:
    logs = [p.read_text() for p in tmp_path_factory.getbasetemp().rglob("*.log")]
    assert logs
    assert not any(SECRET in text or SECRET.removeprefix("whsec_") in text for text in logs)


def _idle(pipe: Pipe) -> bool:
    return pipe.redis.hlen(keys.queue_messages(NOTIFY_QUEUE)) == 0
