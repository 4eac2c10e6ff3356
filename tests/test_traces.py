"""One trace through the outbox: the request that creates a referral, its event, the notifications
worker that consumes it and the inbox entry it writes — in-process, with an in-memory span
exporter. The trace context travels in the signed envelope: a forger who rewrites it breaks the
signature. No span attribute carries a query string or a concrete path."""
from __future__ import annotations

import uuid

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY

from buendnis_common import migrate, tracing
from buendnis_common.db import utcnow
from buendnis_common.settings import OidcSettings, ServiceSettings
from tests.support.platform import free_port

EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module")
def spans():
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(tracing.ScrubbingExporter(EXPORTER)))
    return EXPORTER


def settings(name: str, tmp_path) -> ServiceSettings:
    url = f"sqlite:///{tmp_path / f'{name}.sqlite3'}"
    migrate.upgrade(name, url)
    idp = f"http://127.0.0.1:{free_port()}"
    oidc = OidcSettings(server_url=idp, realm="buendnis", issuer=f"{idp}/realms/buendnis",
                        jwks_url=f"{idp}/certs", token_url=f"{idp}/token",
                        audience="buendnis-api", jwks_min_refresh_seconds=10, leeway_seconds=0)
    return ServiceSettings(
        name=name, database_url=url, redis_url=f"redis://127.0.0.1:{free_port()}/0", oidc=oidc,
        client_id=f"{name}-service", client_secret="x",
        service_urls={"intake": idp, "referrals": idp, "notifications": idp},
        http_timeout_seconds=1.0, relay_interval_seconds=1.0)


def test_one_trace_from_the_request_through_the_outbox_to_the_inbox_entry(spans, tmp_path):
    from notifications.app import create_app as notifications_app
    from referrals.app import create_app as referrals_app

    referrals = referrals_app(settings("referrals", tmp_path)).extensions["buendnis"]
    notifications = notifications_app(settings("notifications", tmp_path)).extensions["buendnis"]
    sent: list[dict] = []
    referrals.outbox.publisher = lambda envelope, queue: sent.append(
        referrals.signer.sign(envelope))

    # The request's span (the gateway's and the service's Flask spans in a running platform).
    referral_id = str(uuid.uuid4())
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("POST /api/v1/referrals",
                                      kind=trace.SpanKind.SERVER) as request_span:
        with referrals.db.transaction() as session:
            referrals.emit(session, "referral.requested", referral_id=referral_id,
                           participant_id=str(uuid.uuid4()), from_org="jmd-leverkusen",
                           to_org="caritas-leverkusen", alliance="leverkusen",
                           need_category="language_course", sender_user_id=str(uuid.uuid4()))
    trace_id = request_span.get_span_context().trace_id
    (envelope,) = sent  # relayed after the commit, signed
    assert envelope["traceparent"].split("-")[1] == format(trace_id, "032x")

    # A forger who moves the event into another trace breaks its signature: refused.
    forged = {**envelope, "traceparent": f"00-{'1' * 32}-{'2' * 16}-01"}
    refused = {"service": "notifications", "reason": "bad_signature"}
    before = REGISTRY.get_sample_value("buendnis_events_refused_total", refused) or 0
    assert notifications.receive(forged) is False
    # ... and counted for Prometheus (buendnis_events_refused_total, by service and reason).
    assert REGISTRY.get_sample_value("buendnis_events_refused_total", refused) == before + 1

    # The notifications worker consumes it (as the Celery task does) and writes the inbox entry.
    assert notifications.receive(envelope) is True
    from notifications.inbox.models import InboxEntry

    with notifications.db.Session() as session:
        entry = session.query(InboxEntry).filter_by(referral_id=uuid.UUID(referral_id)).one()
        assert entry.created_at <= utcnow()

    finished = spans.get_finished_spans()
    in_trace = [span for span in finished if span.context.trace_id == trace_id]
    consumer = next(span for span in in_trace if span.name == "event referral.requested")
    assert consumer.parent.span_id == request_span.get_span_context().span_id
    assert consumer.kind == trace.SpanKind.CONSUMER
    # The inbox entry's INSERT is a span of the same trace, below the consumer's.
    inserts = [span for span in in_trace
               if "INSERT INTO inbox" in str(span.attributes.get("db.statement", ""))]
    assert inserts and all(span.parent is not None for span in inserts)
    below = {consumer.context.span_id}
    for span in sorted(in_trace, key=lambda s: s.start_time):
        if span.parent is not None and span.parent.span_id in below:
            below.add(span.context.span_id)
    assert any(span.context.span_id in below for span in inserts)
    # The forged envelope started no span in the request's trace.
    assert len([s for s in in_trace if s.name == "event referral.requested"]) == 1


def test_span_attributes_keep_route_templates_and_drop_query_strings():
    scrubbed = tracing.scrub({
        "http.route": "/api/v1/participants/<participant_id>",
        "http.target": "/api/v1/participants/0b1c?q=Quillfeatherova",
        "http.url": "http://127.0.0.1:8000/api/v1/participants/0b1c?q=Quillfeatherova",
        "url.query": "q=Quillfeatherova", "http.method": "GET", "net.peer.ip": "203.0.113.7",
        "http.user_agent": "Mozilla/5.0", "client.address": "203.0.113.7"})
    assert scrubbed == {
        "http.route": "/api/v1/participants/<participant_id>",
        "http.target": "/api/v1/participants/<participant_id>",
        "http.url": "http://127.0.0.1:8000/api/v1/participants/<participant_id>",
        "http.method": "GET"}
    assert "Quillfeatherova" not in str(tracing.scrub({"http.url": "http://x/a?q=Quillfeatherova"}))
