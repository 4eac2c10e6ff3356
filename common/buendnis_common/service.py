"""Wiring of one service: database, outbox, consumer, Celery app, Flask app.

Each service's ``create_app`` builds a ``ServiceRuntime`` and registers its blueprints; its
``worker.py`` takes the Celery app from the Flask app, as in Flask's Celery pattern.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from celery import Celery, Task
from celery.signals import celeryd_after_setup
from flask import Flask
from flask_smorest import Api
from sqlalchemy import event as sa_event
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from . import audit, metrics, tracing, unit_of_work
from .auth import TokenVerifier
from .clients import ServiceClient
from .db import Database, utcnow
from .events import (
    EVENT_TASK,
    EVENTS_TASK,
    FAILED,
    HANDLED,
    Confirmations,
    Consumer,
    Handler,
    Outbox,
)
from .settings import ServiceSettings, env_int, env_str
from .signing import EventSigner, RefusedEvent, record_refusal
from .web import configure_logging, create_flask_app

log = logging.getLogger(__name__)


@dataclass
class EventHandlers:
    """A service's handlers of other services' events, declared at import time."""

    handlers: dict[str, Handler] = field(default_factory=dict)

    def on(self, event_type: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.handlers[event_type] = handler
            return handler

        return register


@dataclass(frozen=True)
class Models:
    outbox: type
    processed_event: type
    audit_entry: type


class ServiceRuntime:
    def __init__(
        self,
        settings: ServiceSettings,
        *,
        models: Models,
        handlers: EventHandlers | None = None,
        verifier: TokenVerifier | None = None,
    ) -> None:
        self.name = settings.name
        self.settings = settings
        self.models = models
        tracing.setup(self.name)  # before the engine: its statements become spans
        self.db = Database(settings.database_url)
        tracing.instrument_engine(self.db.engine)
        self.verifier = verifier or TokenVerifier(settings.oidc)
        self.celery = make_celery(settings)
        # Consumers confirm the events they recorded; the producer's sweep reads them and
        # publishes again what stays unconfirmed (buendnis_common.events).
        self.signer = EventSigner.from_env()
        self.confirmations = Confirmations.from_url(settings.redis_url, self.signer.keys)
        self.outbox = Outbox(
            source=self.name, db=self.db, model=models.outbox, publisher=self._publish,
            batch_publisher=self._batch_publisher, confirmations=self.confirmations,
        )
        self.consumer = Consumer(db=self.db, model=models.processed_event,
                                 around=tracing.consuming, name=self.name,
                                 confirmations=self.confirmations)
        self._redis = None
        self.own_queues: list[str] = []
        celeryd_after_setup.connect(self._consume_own_queues, weak=False)
        self.services = ServiceClient(settings)
        for event_type, handler in (handlers or EventHandlers()).handlers.items():
            self.consumer.handles(event_type)(handler)
        sa_event.listen(self.db.Session, "after_commit", self.outbox.after_commit)
        self._register_tasks()
        # Figures read when Prometheus scrapes the worker (buendnis_common.metrics); services
        # append their own.
        self.readings: list[metrics.Reading] = [self._outbox_reading, self._queue_reading]
        metrics.instrument_celery(self.celery, lambda: self.readings)

    def _outbox_reading(self):
        model = self.models.outbox
        with self.db.Session() as session:
            pending, oldest = session.execute(
                select(func.count(), func.min(model.occurred_at))
                .where(model.published_at.is_(None))).one()
        age = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
        labels = {"service": self.name}
        yield metrics.gauge("buendnis_outbox_pending_events",
                            "Events in the outbox not yet published", pending, labels)
        yield metrics.gauge("buendnis_outbox_oldest_pending_age_seconds",
                            "Age of the oldest unpublished event (0 when none)", age, labels)
        with self.db.Session() as session:
            unconfirmed, first = session.execute(
                select(func.count(), func.min(model.published_at))
                .where(model.confirm_due_at.is_not(None))).one()
        yield metrics.gauge("buendnis_outbox_unconfirmed_events",
                            "Events published but not yet confirmed by every subscriber",
                            unconfirmed, labels)
        yield metrics.gauge("buendnis_outbox_oldest_unconfirmed_age_seconds",
                            "Time since the first publish of the oldest event not yet confirmed "
                            "by every subscriber (0 when none)",
                            (utcnow() - first).total_seconds() if first is not None else 0.0,
                            labels)

    def _queue_reading(self):
        for queue in (self.name, *self.own_queues):
            length = self._refusal_counter().llen(queue)
            yield metrics.gauge("buendnis_queue_length", "Messages waiting in a Celery queue",
                                length, {"queue": queue})

    def own_queue(self, kind: str) -> str:
        """A queue of this service's own beside its event queue, ``<service>.<kind>``, for
        periodic work that runs long (notifications' reminder dispatch): its messages never
        wait behind a burst of events, nor events behind them (the broker hands a worker its
        queues in turn). Every worker of the service consumes it, whatever its ``-Q`` says
        (``celeryd_after_setup``), and gets one more thread for it (``worker_concurrency``,
        unless the command line sets ``--concurrency``), so that a long run holds that one and
        the events keep the other. Several runs in one worker at once are the task's to avoid
        (notifications' dispatch lets only one run per process)."""
        queue = f"{self.name}.{kind}"
        if queue not in self.own_queues:
            self.own_queues.append(queue)
            self.celery.conf.worker_concurrency = 1 + len(self.own_queues)
        return queue

    def _consume_own_queues(self, sender=None, instance=None, **_kwargs) -> None:
        if instance is not None and instance.app is self.celery:
            for queue in self.own_queues:
                instance.app.amqp.queues.select_add(queue)

    def _publish(self, envelope: dict[str, Any], queue: str) -> None:
        self.celery.send_task(EVENT_TASK, args=[self.signer.sign(envelope)], queue=queue,
                              retry=False)
        metrics.EVENTS_PUBLISHED.labels(self.name, metrics.code(envelope.get("type"))).inc()

    @contextmanager
    def _batch_publisher(self) -> Iterator[Callable[[list[dict[str, Any]], str], None]]:
        """One producer (one broker connection) for a whole relay run; each ``send`` puts one
        message holding a batch of envelopes, each signed on its own, into a queue."""
        with self.celery.producer_or_acquire() as producer:
            def send(envelopes: list[dict[str, Any]], queue: str) -> None:
                self.celery.send_task(EVENTS_TASK, args=[[self.signer.sign(e) for e in envelopes]],
                                      queue=queue, retry=False, producer=producer)
                for envelope in envelopes:
                    metrics.EVENTS_PUBLISHED.labels(self.name,
                                                    metrics.code(envelope.get("type"))).inc()

            yield send

    def receive_many(self, *args: Any, **kwargs: Any) -> int:
        """A message holding a batch of envelopes: each is checked as ``receive`` checks one
        (a forged one is recorded and dropped, the batch's others go on), the genuine ones are
        handled together (``Consumer.dispatch_many``). Returns how many were handled."""
        message = args[0] if len(args) == 1 and not kwargs else None
        if not isinstance(message, list):
            message = [message]  # refused below as malformed, whatever it was
        genuine = []
        for item in message:
            try:
                genuine.append(self.signer.check(item))
            except RefusedEvent as refused:
                record_refusal(self.name, refused, self._refusal_counter())
                metrics.EVENTS_REFUSED.labels(self.name, metrics.code(refused.reason)).inc()
        outcomes = self.consumer.dispatch_many(genuine) if genuine else []
        for envelope, outcome in zip(genuine, outcomes, strict=True):
            metrics.EVENTS_CONSUMED.labels(
                self.name, metrics.code(envelope.get("type")),
                "handled" if outcome == HANDLED else "failed" if outcome == FAILED
                else "skipped").inc()
        return outcomes.count(HANDLED)

    def receive(self, *args: Any, **kwargs: Any) -> bool:
        """A message from an event queue: checked before anything else; handled only if it is
        a genuine event (see ``buendnis_common.signing``), otherwise recorded and dropped."""
        message = args[0] if len(args) == 1 and not kwargs else None
        try:
            envelope = self.signer.check(message)
        except RefusedEvent as refused:
            record_refusal(self.name, refused, self._refusal_counter())
            metrics.EVENTS_REFUSED.labels(self.name, metrics.code(refused.reason)).inc()
            return False
        with tracing.consuming(envelope):
            handled = self.consumer.dispatch(envelope)
        metrics.EVENTS_CONSUMED.labels(self.name, metrics.code(envelope.get("type")),
                                       "handled" if handled else "skipped").inc()
        return handled

    def _refusal_counter(self):
        if self._redis is None:
            import redis

            self._redis = redis.Redis.from_url(self.settings.redis_url, socket_timeout=2,
                                               socket_connect_timeout=2)
        return self._redis

    def emit(self, session, event_type: str, **data: Any):
        return self.outbox.emit(session, event_type, **data)

    def audit(self, session, action: str, *, owner_org: str | None = None,
              **kwargs: Any) -> None:
        """Record the entry here and ship it, through the outbox, to the audit trail.

        ``owner_org`` is the organisation the participant belongs to, where the actor may be
        another one (the receiver of a referral). The trail is read by the actor's organisation's
        auditors; the participant's id is the owner's reference, so an entry of another
        organisation's action goes to the trail without it (the record id — the referral —
        still says what was accessed). This service's own entry keeps it, for the owner's
        Art. 15 access log."""
        entry = audit.record(session, self.models.audit_entry, action, **kwargs)
        shipped = dict(entry)
        if owner_org is not None and entry["actor_org"] != owner_org:
            shipped["participant_id"] = None
        self.outbox.emit(session, "audit.recorded", **shipped)

    def audit_many(self, session, action: str, participant_ids: list, *,
                   record_ids: list | None = None, owner_orgs: list | None = None,
                   actor: str | None = None, actor_org: str | None = None) -> None:
        """A list read (or an import) audited once: its entries in one statement here and one
        ``audit.recorded`` event to the trail, whatever the list's length (a list of 50 costs
        what a list of 1 does). ``record_ids`` and ``owner_orgs`` pair up with the participants
        as ``audit``'s ``record_id`` and ``owner_org`` do: another organisation's participant
        goes to the trail without its id."""
        entries = audit.record_many(session, self.models.audit_entry, action, participant_ids,
                                    record_ids=record_ids, actor=actor, actor_org=actor_org)
        if not entries:
            return
        first = {k: v for k, v in entries[0].items() if k not in ("participant_id", "record_id")}
        owners = owner_orgs or [None] * len(entries)
        shipped = [None if owner is not None and e["actor_org"] != owner else e["participant_id"]
                   for e, owner in zip(entries, owners, strict=True)]
        extra = {"record_ids": [e["record_id"] for e in entries]} if record_ids else {}
        self.outbox.emit(session, "audit.recorded", **first, participant_ids=shipped, **extra)

    def _register_tasks(self) -> None:
        runtime = self

        # shared=False: several runtimes in one process (tests) keep their own tasks.
        @self.celery.task(
            name=EVENT_TASK,
            shared=False,
            acks_late=True,
            reject_on_worker_lost=True,
            autoretry_for=(OperationalError,),
            retry_backoff=True,
            retry_backoff_max=60,
            retry_jitter=True,
            max_retries=20,
        )
        def handle_event(*args: Any, **kwargs: Any) -> None:
            # Whatever arrives, in whatever shape: the signature is checked first.
            runtime.receive(*args, **kwargs)

        # The relay's batches: the same delivery guarantees as one event. Acknowledged after
        # the batch's transaction committed (acks_late); a worker that dies holding it gives
        # it back (reject_on_worker_lost, or the broker's visibility timeout after a SIGKILL)
        # and the events committed before are then skipped by their recorded ids.
        @self.celery.task(
            name=EVENTS_TASK,
            shared=False,
            acks_late=True,
            reject_on_worker_lost=True,
            autoretry_for=(OperationalError,),
            retry_backoff=True,
            retry_backoff_max=60,
            retry_jitter=True,
            max_retries=20,
        )
        def handle_events(*args: Any, **kwargs: Any) -> int:
            return runtime.receive_many(*args, **kwargs)

        @self.celery.task(name=f"{self.name}.relay_outbox", shared=False)
        def relay_outbox() -> int:
            return runtime.outbox.relay_all()

        interval = self.settings.relay_interval_seconds
        self.celery.conf.beat_schedule = {
            **(self.celery.conf.beat_schedule or {}),
            "relay-outbox": {
                "task": f"{self.name}.relay_outbox",
                "schedule": timedelta(seconds=interval),
                "options": {"queue": self.name, "expires": max(interval * 2, 5)},
            },
        }

    def create_app(
        self,
        import_name: str,
        *,
        title: str,
        blueprints: Iterable,
        public_paths: Iterable[str] = (),
    ) -> tuple[Flask, Api]:
        configure_logging(env_str("LOG_LEVEL", "INFO"))
        app, api = create_flask_app(
            import_name, title=title, verifier=self.verifier, public_paths=public_paths
        )
        for blueprint in blueprints:
            api.register_blueprint(blueprint)
        metrics.instrument_flask(app)
        tracing.instrument_flask(app)
        self.bind(app)
        return app, api

    def bind(self, app: Flask) -> None:
        """Make this runtime the app's: sessions end with the app context, tasks run in it."""
        app.teardown_appcontext(self.db.remove)
        # One transaction per request: commit on success, roll back on an error or 4xx/5xx.
        unit_of_work.install(app, self.db)
        app.extensions["buendnis"] = self
        app.extensions["celery"] = self.celery
        self.celery.flask_app = app


def make_celery(settings: ServiceSettings) -> Celery:
    celery = Celery(settings.name, task_cls=AppContextTask)
    celery.conf.update(
        broker_url=settings.redis_url,
        task_default_queue=settings.name,
        task_ignore_result=True,
        # Acknowledgement: the event tasks acknowledge late (after their transaction
        # committed, see _register_tasks), periodic ones early (a lost tick is replaced by the
        # next one). Prefetch: one message per thread. An event message carries a batch of up
        # to EVENT_BATCH_SIZE events, so fetching one at a time costs one round trip per batch,
        # not per event; reserving more would only let a busy worker sit on batches that an
        # idle one could take, and a killed worker's reserved messages come back only after
        # the visibility timeout below.
        task_acks_late=False,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=2,
        broker_transport_options={
            # An event delivered to a worker that is then killed (SIGKILL, no warm shutdown)
            # comes back after this long (tests/faults). Far above any task's run time and
            # the longest retry countdown (60 s); reminders are rows, never far-future ETAs.
            "visibility_timeout": env_int("BROKER_VISIBILITY_TIMEOUT_SECONDS", 300),
            "socket_connect_timeout": 2,
            "socket_timeout": 5,
        },
        task_serializer="json",
        accept_content=["json"],
        timezone="Europe/Berlin",
        enable_utc=True,
    )
    return celery


class AppContextTask(Task):
    """Runs inside the Flask app's context once one is bound (Flask's Celery pattern)."""

    def __call__(self, *args: object, **kwargs: object) -> object:
        flask_app = getattr(self.app, "flask_app", None)
        if flask_app is None:
            return self.run(*args, **kwargs)
        with flask_app.app_context():
            return self.run(*args, **kwargs)


def current_runtime() -> ServiceRuntime:
    from flask import current_app

    return current_app.extensions["buendnis"]
