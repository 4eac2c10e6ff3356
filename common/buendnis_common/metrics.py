"""Prometheus metrics of every process: requests, tasks, events, and the platform's own figures.

Why this shape:

- **A port of its own per process** (``METRICS_PORT``; off when unset). The figures never pass
  through the gateway or any public route: the gateway routes ``/api/v1/…`` and a few public
  paths only, and no Flask app registers ``/metrics``.
- **Several processes, one set of figures.** gunicorn forks workers and Celery forks its pool, so
  prometheus-client runs in multiprocess mode: every process writes its values to files in
  ``PROMETHEUS_MULTIPROC_DIR`` (``$BUENDNIS_VAR/metrics/<port>``, emptied when the process tree
  starts: by ``gunicorn.conf.py`` in gunicorn's master, by this module's import in Celery's main
  process), and the one HTTP server of the process tree adds them up. gunicorn's ``child_exit``
  hook and Celery's ``worker_process_shutdown`` signal mark a finished process dead.
- **Figures that live in the database** (the outbox backlog and the age of its oldest unpublished
  event, reminders due, the audit trail's length) are read when Prometheus scrapes, by collectors
  in the Celery worker's main process: they stay right when nothing else runs.
- **No personal data in labels**: routes are templates (``/api/v1/participants/<participant_id>``,
  never the concrete path), tasks and events by name and type, outcomes as codes. Anything that
  is not a short code becomes ``other``.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def metrics_port() -> int | None:
    value = os.environ.get("METRICS_PORT", "").strip()
    return int(value) if value else None


def multiprocess_dir(port: int) -> Path:
    return Path(os.environ.get("BUENDNIS_VAR", "var")) / "metrics" / str(port)


def prepare_multiprocess_dir(port: int) -> Path:
    """An empty directory for this process tree's values (what a previous run left is gone)."""
    directory = multiprocess_dir(port).resolve()
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    return directory


# Before prometheus-client is imported: it chooses its value store on import.
if metrics_port() is not None and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    prepare_multiprocess_dir(metrics_port())

from prometheus_client import (  # noqa: E402
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
    values,
)
from prometheus_client.core import GaugeMetricFamily  # noqa: E402
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead  # noqa: E402

# Metrics created from here on use the store chosen above, even if something imported
# prometheus-client earlier.
values.ValueClass = values.get_value_class()

_CODE = re.compile(r"^[a-z][a-z0-9_.\-]{0,63}$")


def code(value: Any) -> str:
    """A label value that is a short code, or ``other``."""
    return value if isinstance(value, str) and _CODE.match(value) else "other"


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


# -- the platform's figures --------------------------------------------------------------------
TASKS = Counter("buendnis_celery_tasks_total", "Celery tasks run, by name and outcome",
                ["task", "outcome"])
TASK_SECONDS = Histogram("buendnis_celery_task_duration_seconds", "Celery task run time",
                         ["task"], buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
EVENTS_CONSUMED = Counter("buendnis_events_consumed_total",
                          "Events received by a service's consumer, by type and outcome "
                          "(handled, duplicate, ignored)", ["service", "type", "outcome"])
EVENTS_REFUSED = Counter("buendnis_events_refused_total",
                         "Messages in an event queue refused (unsigned, forged, wrong source)",
                         ["service", "reason"])
EVENTS_PUBLISHED = Counter("buendnis_outbox_published_total",
                           "Outbox events published to a subscriber's queue",
                           ["service", "type"])
REMINDERS = Counter("buendnis_reminders_total",
                    "Reminders and notices settled by the dispatcher, by outcome "
                    "(sent, failed, a reason not to send, retry, error)", ["outcome"])
REMINDER_LATENESS = Histogram(
    "buendnis_reminder_lateness_seconds", "How long after its due time a reminder went out",
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600),
)
CONSENT_EXPIRIES = Counter("buendnis_consent_expiries_total",
                           "Consents found past their last valid day and reported")
REFERRALS_OVERDUE = Counter("buendnis_referrals_marked_overdue_total",
                            "Referrals whose response became overdue")
RATE_LIMITED = Counter("buendnis_rate_limit_refusals_total",
                       "Requests refused with 429 by a rate limit", ["process"])
AUDIT_VERIFIED_OK = Gauge("buendnis_audit_chain_last_verification_ok",
                          "1 if the last verification of the audit chain found it intact, "
                          "0 if broken", multiprocess_mode="mostrecent")
AUDIT_VERIFIED_AT = Gauge("buendnis_audit_chain_last_verification_timestamp_seconds",
                          "When the audit chain was last verified (Unix time)",
                          multiprocess_mode="mostrecent")


# -- scrape-time figures ------------------------------------------------------------------------
Reading = Callable[[], Iterable[GaugeMetricFamily]]


class ReadingCollector:
    """Figures read when Prometheus scrapes; a reading that fails is left out (and logged),
    so one broken query does not hide the others."""

    def __init__(self, readings: Iterable[Reading]) -> None:
        self.readings = list(readings)

    def collect(self):
        for reading in self.readings:
            try:
                yield from reading()
            except Exception:  # noqa: BLE001 - a failed reading must not fail the scrape
                log.warning("metrics: a reading failed", exc_info=True)


def gauge(name: str, documentation: str, value: float,
          labels: dict[str, str] | None = None) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=list(labels or {}))
    family.add_metric(list((labels or {}).values()), value)
    return family


def serve(port: int | None = None, readings: Iterable[Reading] = ()) -> int | None:
    """The process tree's metrics on ``METRICS_HOST`` (127.0.0.1) : ``port``."""
    port = port if port is not None else metrics_port()
    if port is None:
        return None
    if multiprocess():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    readings = list(readings)
    if readings:
        registry.register(ReadingCollector(readings))
    host = os.environ.get("METRICS_HOST", "127.0.0.1")
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as exc:  # the port is taken: the process runs on, without its figures
        log.error("metrics: port %d not available (%s); this process serves no metrics", port,
                  type(exc).__name__)
        return None
    log.info("metrics on http://%s:%d/metrics", host, port)
    return port


def process_dead(pid: int) -> None:
    if multiprocess():
        mark_process_dead(pid)


# -- Flask ---------------------------------------------------------------------------------------
def flask_route(request) -> str:
    """The route template Flask matched (``<unmatched>`` for a path no route has)."""
    return request.url_rule.rule if request.url_rule is not None else "<unmatched>"


def instrument_flask(app, *, route: Callable[[Any], str] = flask_route) -> None:
    """Requests by route template, method and status, with a latency histogram
    (``flask_http_request_duration_seconds``, ``flask_http_request_total``). Only when this
    process serves metrics; the app gets no ``/metrics`` route."""
    if metrics_port() is None or app.extensions.get("prometheus_metrics"):
        return
    from prometheus_flask_exporter import PrometheusMetrics

    def group(request) -> str:
        try:
            return route(request)
        except Exception:  # noqa: BLE001 - a label must never fail the request
            log.warning("metrics: no route label", exc_info=True)
            return "<unknown>"

    app.extensions["prometheus_metrics"] = PrometheusMetrics(
        app, path=None, registry=CollectorRegistry(), group_by=group,
        excluded_paths=["^/healthz$", "^/readyz$"],
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    )


def count_rate_limited(process: str) -> None:
    RATE_LIMITED.labels(code(process)).inc()


# -- Celery --------------------------------------------------------------------------------------
_started: dict[str, float] = {}
_celery_connected = False


def instrument_celery(celery, readings: Callable[[], Iterable[Reading]] = lambda: ()) -> None:
    """Tasks by name and outcome with their run time, for every Celery app of the process; the
    worker's (or beat's) main process serves the figures, with the ``readings`` of the app."""
    global _celery_connected
    from celery.signals import (
        beat_init,
        task_postrun,
        task_prerun,
        worker_init,
        worker_process_shutdown,
    )

    if metrics_port() is None:
        return
    if not _celery_connected:
        _celery_connected = True
        task_prerun.connect(_task_started, weak=False)
        task_postrun.connect(_task_finished, weak=False)
        worker_process_shutdown.connect(lambda **_: process_dead(os.getpid()), weak=False)

    def start(sender=None, **_kwargs):
        app = getattr(sender, "app", sender)
        if app is not celery:
            return
        serve(readings=readings())

    def start_beat(sender=None, **_kwargs):
        if getattr(sender, "app", None) is not celery:
            return
        serve()

    worker_init.connect(start, weak=False)
    beat_init.connect(start_beat, weak=False)


def _task_started(task_id=None, task=None, **_kwargs) -> None:
    if task_id:
        _started[task_id] = time.monotonic()


def _task_finished(task_id=None, task=None, state=None, **_kwargs) -> None:
    name = code(getattr(task, "name", None))
    TASKS.labels(name, code((state or "unknown").lower())).inc()
    began = _started.pop(task_id, None)
    if began is not None:
        TASK_SECONDS.labels(name).observe(time.monotonic() - began)
