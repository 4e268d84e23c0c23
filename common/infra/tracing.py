"""Traces (OpenTelemetry), off unless an OTLP endpoint is configured by the standard `OTEL_*` variables.

One trace per webhook: the ingest's `webhook` span (verify, enqueue) → the trace context carried in the
Dramatiq message's options (`otel`, a W3C `traceparent` carrier) → the worker's `queue.wait` and `pass` spans →
a span per Kinde call and per role write. Attributes name the event type, the customer and the outcome; never
a token, a secret or a raw webhook body (only the names in `ATTRIBUTES` are ever set).

The SDK and the OTLP/HTTP exporter are the optional `otel` extra (`pip install 'kinde-role-sync[otel]'`; the image
has them). Without them, or without an endpoint, every function here is a no-op costing one attribute check.
The SDK itself reads the rest of its configuration (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
`OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_BSP_SCHEDULE_DELAY`, ...): README, "Traces".
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from common.errors import ConfigError

try:  # the otel extra
    from opentelemetry import propagate, trace
except ImportError:  # pragma: no cover - the image and the test extra have it
    trace = None  # type: ignore[assignment]

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
# The only attribute names set: ids and outcomes, never a credential or a body.
ATTRIBUTES = frozenset({
    "event.type", "event.id", "customer.id", "outcome", "queue", "actor", "kinde.endpoint", "http.method",
    "http.status_code", "role.action", "role.id", "org.code", "user.id",
})  # fmt: skip
_state: dict[str, Any] = {"provider": None}


def wanted(env: Mapping[str, str]) -> bool:
    """Tracing on: an OTLP endpoint is set and neither OTEL_SDK_DISABLED nor OTEL_TRACES_EXPORTER=none turns it off."""
    disabled = env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
    exporter_off = env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none"
    return any(env.get(name, "").strip() for name in ENDPOINT_VARIABLES) and not (disabled or exporter_off)


def start(service: str, enabled: bool) -> None:
    """Install the tracer provider in this process (after any fork: the exporter runs a thread)."""
    if not enabled or _state["provider"] is not None:
        return
    if trace is None:
        raise ConfigError("OTEL_EXPORTER_OTLP_ENDPOINT is set but the otel extra is not installed: "
                          "pip install 'kinde-role-sync[otel]'")  # fmt: skip
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))  # OTEL_SERVICE_NAME wins
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _state["provider"] = provider


def stop() -> None:
    """Send what is buffered (at process exit)."""
    provider = _state["provider"]
    if provider is not None:
        provider.shutdown()
        _state["provider"] = None


def _on() -> bool:
    return trace is not None and _state["provider"] is not None


def _clean(attributes: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in attributes.items() if name in ATTRIBUTES and value is not None}


def span(
    name: str, attributes: Mapping[str, Any] | None = None, *, parent: Mapping[str, str] | None = None
) -> AbstractContextManager[None]:
    """A span around the block, child of the current span (or of the carrier `parent`, from a message).
    Untraced, one shared no-op context: no generator is built per block (the ingest opens three per webhook)."""
    return _traced(name, attributes, parent) if _on() else _UNTRACED


_UNTRACED: AbstractContextManager[None] = nullcontext()


@contextmanager
def _traced(name: str, attributes: Mapping[str, Any] | None, parent: Mapping[str, str] | None) -> Iterator[None]:
    ctx = propagate.extract(dict(parent)) if parent else None
    with trace.get_tracer("rolesync").start_as_current_span(name, context=ctx, attributes=_clean(attributes or {})):
        yield


def annotate(**attributes: Any) -> None:
    """Name more of what the current span did (its customer, its outcome)."""
    if _on():
        trace.get_current_span().set_attributes(_clean(attributes))


def waited(name: str, since_s: float, parent: Mapping[str, str] | None, attributes: Mapping[str, Any]) -> None:
    """A finished span from `since_s` (epoch s) to now: the time a message waited in its queue."""
    if not _on():
        return
    ctx = propagate.extract(dict(parent)) if parent else None
    tracer = trace.get_tracer("rolesync")
    tracer.start_span(name, context=ctx, attributes=_clean(attributes), start_time=int(since_s * 1e9)).end()


def carrier() -> dict[str, str]:
    """The current trace context as message options carry it (`{}` when not tracing)."""
    found: dict[str, str] = {}
    if _on():
        propagate.inject(found)
    return found
