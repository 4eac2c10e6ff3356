"""OpenTelemetry traces across the gateway, the services, the calls between them, the database,
Redis, Celery — and through the outbox.

Off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (then spans go out over OTLP/HTTP, the service
named by ``OTEL_SERVICE_NAME`` or the process's role), or unless a test installed an SDK tracer
provider of its own. The outbox keeps the trace: ``Outbox.emit`` notes the W3C ``traceparent`` of
the span that emitted the event, the envelope carries it (inside what the event signature covers,
``buendnis_common.signing``), and the consumer's span continues that trace — so one trace shows
``POST /api/v1/referrals`` → the event → the notifications worker → the inbox entry.

No personal data in span attributes: URLs lose their query strings (a search carries a name) and
the concrete path gives way to the route template (``/api/v1/participants/<participant_id>``);
SQL statements are recorded with placeholders, never with their values.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

log = logging.getLogger(__name__)

_instrumented = False
# Attributes that may hold a URL, path or query string.
_URLS = ("http.url", "url.full", "http.target", "url.path")
# ... and those that name a person's address or device (a caller's IP address is personal data).
_DROPPED_PREFIXES = ("url.query", "http.request.header.", "http.response.header.",
                     "db.statement.parameters", "celery.args", "celery.kwargs",
                     "net.peer.ip", "net.peer.port", "net.sock.peer.", "client.address",
                     "client.port", "http.client_ip", "http.user_agent", "user_agent.")


def enabled() -> bool:
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")) or isinstance(
        trace.get_tracer_provider(), TracerProvider)


def scrub(attributes: dict[str, Any]) -> dict[str, Any]:
    clean = {}
    route = attributes.get("http.route")
    for key, value in attributes.items():
        if key.startswith(_DROPPED_PREFIXES):
            continue
        if key in _URLS and isinstance(value, str):
            value = value.split("?", 1)[0]
            if route and key in ("http.target", "url.path"):
                value = route
            elif route and key in ("http.url", "url.full"):
                scheme, _, rest = value.partition("://")
                value = f"{scheme}://{rest.split('/', 1)[0]}{route}"
        clean[key] = value
    return clean


class ScrubbingExporter(SpanExporter):
    """Hands spans on with their attributes scrubbed (``scrub``)."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([
            ReadableSpan(
                name=span.name, context=span.context, parent=span.parent,
                resource=span.resource, attributes=scrub(dict(span.attributes or {})),
                events=span.events, links=span.links, kind=span.kind, status=span.status,
                start_time=span.start_time, end_time=span.end_time,
                instrumentation_scope=span.instrumentation_scope,
            ) for span in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def setup(service: str) -> None:
    """The tracer provider (with OTLP) and the library instrumentations, once per process."""
    global _instrumented
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") and not isinstance(
            trace.get_tracer_provider(), TracerProvider):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        from .logformat import process_role

        provider = TracerProvider(resource=Resource.create(
            {"service.name": os.environ.get("OTEL_SERVICE_NAME") or process_role() or service}))
        provider.add_span_processor(BatchSpanProcessor(ScrubbingExporter(OTLPSpanExporter())))
        trace.set_tracer_provider(provider)
    if _instrumented or not enabled():
        return
    _instrumented = True
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    RequestsInstrumentor().instrument()
    RedisInstrumentor().instrument()
    CeleryInstrumentor().instrument()


def instrument_engine(engine) -> None:
    """The engine's statements as spans (with placeholders, never values). The instrumentation's
    engine tracer is attached to each engine itself: its instrumentor is one per process and
    would trace only the first engine (several runtimes share a process in tests), and its
    declared range ends below SQLAlchemy 2.1, whose engine events are unchanged
    (tests/test_traces.py shows the statements' spans)."""
    if not enabled() or getattr(engine, "_buendnis_traced", False):
        return
    from opentelemetry import metrics as otel_metrics
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer

    usage = otel_metrics.get_meter("buendnis.sqlalchemy").create_up_down_counter(
        "db.client.connections.usage", unit="connections")
    EngineTracer(trace.get_tracer("opentelemetry.instrumentation.sqlalchemy"), engine, usage,
                 False)
    engine._buendnis_traced = True


def instrument_flask(app) -> None:
    if not enabled() or app.extensions.get("otel"):
        return
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    FlaskInstrumentor().instrument_app(app, excluded_urls="healthz,readyz")
    app.extensions["otel"] = True


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, if a trace is being recorded."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


def consuming(envelope: dict[str, Any]):
    """A consumer span for one event, continuing the trace its envelope carries."""
    parent = None
    traceparent = envelope.get("traceparent")
    if isinstance(traceparent, str):
        parent = propagate.extract({"traceparent": traceparent})
    token = otel_context.attach(parent) if parent is not None else None
    tracer = trace.get_tracer("buendnis.events")
    span = tracer.start_as_current_span(
        f"event {envelope.get('type', '')}", kind=trace.SpanKind.CONSUMER,
        attributes={"messaging.system": "celery", "messaging.operation": "process",
                    "buendnis.event.type": str(envelope.get("type", ""))})
    return _Consuming(span, token)


class _Consuming:
    def __init__(self, span_cm, token) -> None:
        self.span_cm = span_cm
        self.token = token

    def __enter__(self):
        return self.span_cm.__enter__()

    def __exit__(self, *exc):
        try:
            return self.span_cm.__exit__(*exc)
        finally:
            if self.token is not None:
                otel_context.detach(self.token)
