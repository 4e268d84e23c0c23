"""Traces are off unless the standard OTEL_* variables name an endpoint (common/infra/tracing.py); the cross-process
trace itself is proven on real processes in tests/e2e/test_traces.py."""

from __future__ import annotations

from common.infra import tracing
from common.messages import TRACE_OPTION, event_message
from common.settings import Settings


def test_tracing_is_wanted_only_with_an_endpoint_and_not_turned_off() -> None:
    assert not tracing.wanted({})
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"})
    assert not tracing.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"})
    assert not tracing.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"})
    assert Settings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}).tracing


def test_off_it_costs_nothing_and_messages_carry_no_trace_option() -> None:
    tracing.start("rolesync-test", enabled=False)
    with tracing.span("webhook", {"event.type": "user.created"}):
        tracing.annotate(outcome="queued")
        assert tracing.carrier() == {}
    assert TRACE_OPTION not in event_message({}, None, 0.0, trace=tracing.carrier()).options


def test_only_named_attributes_are_ever_set() -> None:
    found = tracing._clean({"customer.id": "customer_1", "token": "eyJ...", "client_secret": "s", "outcome": None})
    assert found == {"customer.id": "customer_1"}
