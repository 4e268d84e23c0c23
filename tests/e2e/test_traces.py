"""One webhook, one trace across processes: a real ingest and a real Dramatiq worker export OTLP/HTTP protobuf to
a receiver in this test (common/infra/tracing.py, worker/runtime/traced_messages.py), configured only by OTEL_*
variables."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from launch.pipe import Pipe
from launch.processes import free_port
from tests.e2e.conftest import e2e_pipe
from tests.procs import wait_until

pytestmark = pytest.mark.e2e
TRACES_DB = 13  # a database of its own, beside the package's shared pipe (db 1)


@dataclass(frozen=True)
class Span:
    service: str
    trace_id: str
    name: str
    attributes: dict[str, Any]


class Receiver(ThreadingHTTPServer):
    """An OTLP/HTTP collector that keeps every span it is sent."""

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.spans: list[Span] = []
        self.bodies: list[bytes] = []


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.bodies.append(body)
        self.server.spans.extend(decoded(body))
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *_: Any) -> None:
        return


def decoded(body: bytes) -> list[Span]:
    request = ExportTraceServiceRequest.FromString(body)
    found = []
    for resource_spans in request.resource_spans:
        service = value_of(resource_spans.resource.attributes, "service.name")
        for scope in resource_spans.scope_spans:
            for span in scope.spans:
                attributes = {kv.key: _any(kv.value) for kv in span.attributes}
                found.append(Span(str(service), span.trace_id.hex(), span.name, attributes))
    return found


def value_of(attributes: Any, key: str) -> Any:
    return next((_any(kv.value) for kv in attributes if kv.key == key), None)


def _any(value: Any) -> Any:
    return getattr(value, value.WhichOneof("value")) if value.WhichOneof("value") else None


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver(free_port())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def traced(redis_server_url: str, tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[Pipe]:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.server_port}", "OTEL_BSP_SCHEDULE_DELAY": "200"}
    with e2e_pipe(redis_server_url, tmp_path_factory.mktemp("e2e-traces"), env=env, db=TRACES_DB) as running:
        yield running


def trace_of_write(receiver: Receiver, user_id: str) -> list[Span]:
    """Every span of the trace in which the user's role was written (events of one plan change coalesce into one
    pass, and which of them runs it is the worker's business)."""
    writes = [s for s in receiver.spans if s.name == "role.write" and s.attributes.get("user.id") == user_id]
    return [s for s in receiver.spans if writes and s.trace_id == writes[0].trace_id]


def complete(spans: list[Span]) -> bool:
    names = {(s.service, s.name) for s in spans}
    needed = {("rolesync-ingest", n) for n in ("webhook", "webhook.verify", "webhook.enqueue")}
    needed |= {("rolesync-worker", n) for n in ("queue.wait", "pass", "role.write")}
    kinde = any(s.service == "rolesync-worker" and s.name.startswith("kinde ") for s in spans)
    return needed <= names and kinde


def whole_trace(receiver: Receiver, user_id: str) -> list[Span]:
    try:
        return wait_until(lambda: complete(trace_of_write(receiver, user_id)) and trace_of_write(receiver, user_id),
                          timeout=60, what="the whole trace")  # fmt: skip
    except TimeoutError:
        seen = sorted({(s.service, s.name, str(s.attributes.get("event.type"))) for s in receiver.spans})
        found = sorted((s.service, s.name) for s in trace_of_write(receiver, user_id))
        raise AssertionError(f"the role write's trace {found}; every span received: {seen}") from None


def test_one_webhook_is_one_trace_from_the_ingest_through_the_queue_to_its_kinde_calls(
    traced: Pipe, receiver: Receiver
) -> None:
    user = traced.kinde.create_user(email="traced@example.com")
    traced.kinde.change_plan(user["customer_id"], "plan_subscriber")
    wait_until(lambda: traced.kinde.user_roles(user["id"]) == ["role_subscriber"], timeout=60, what="the role")
    spans = whole_trace(receiver, user["id"])
    assert len({s.trace_id for s in spans}) == 1
    assert {s.service for s in spans} == {"rolesync-ingest", "rolesync-worker"}
    passes = [s for s in spans if s.name == "pass"]
    assert any(s.attributes.get("customer.id") == user["customer_id"] and s.attributes.get("outcome") for s in passes)
    writes = [s.attributes for s in spans if s.name == "role.write"]
    assert {(w["role.action"], w["role.id"], w["user.id"]) for w in writes} == {("add", "role_subscriber", user["id"])}


def test_no_span_carries_a_token_or_the_client_secret(traced: Pipe, receiver: Receiver) -> None:
    user = traced.kinde.create_user(email="traced-secret@example.com")
    traced.kinde.change_plan(user["customer_id"], "plan_client")
    whole_trace(receiver, user["id"])
    exported = b"".join(receiver.bodies)
    for secret in [traced.client_secret, *traced.kinde.issued_tokens()]:
        assert secret.encode() not in exported
