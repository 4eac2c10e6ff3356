"""The three services in the test's own process: domain rules without sockets, workers or waits.

``World`` builds intake, referrals and notifications with ``create_app`` on databases copied from
one migrated template per session (``Templates``: a SQLite file copied per test, or on PostgreSQL
``CREATE DATABASE … TEMPLATE …``), and answers every request through ``requests`` as the
platform does, so tests keep their ``ApiClient`` code:

- a request to ``/api/v1/…`` goes to the service that owns the path (``gateway.routes``), as the
  gateway would forward it (the gateway's own behaviour — audit trail, limits, routing — has
  tests of its own on the real platform);
- tokens are minted by the session's test key (``tests.support.identity``), which the apps trust;
- a service calling another (referrals asking intake about consent) reaches it the same way;
- events go through an in-process bus instead of Redis and Celery: published after the commit as
  the outbox publishes them, signed, checked and handled by the receiver's own ``receive``; the
  bus delivers everything pending when a test's request has been answered (as if the workers were
  instantly fast), and Celery tasks a handler starts run at once (``task_always_eager``).

What needs time, beat or a real broker (reminders falling due, crashes, sweeps) stays on the
platform (``tests/conftest.py``).
"""
from __future__ import annotations

import os
import secrets
import shutil
from collections import deque
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from werkzeug.test import Client

from buendnis_common import migrate
from buendnis_common.settings import OidcSettings, ServiceSettings
from gateway.routes import owner
from tests.support.identity import AUDIENCE, ISSUER, TestJwks, TestKey
from tests.support.platform import ApiClient

SERVICES = ("intake", "referrals", "notifications")
GATEWAY = "http://gateway.test"
NOWHERE = "redis://127.0.0.1:9/0"  # no broker: the bus carries the events


def service_url(name: str) -> str:
    return f"http://{name}.test"


class Templates:
    """One migrated database per service for the session; a fresh copy of it per ``World``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.server = os.environ.get("BUENDNIS_TEST_PG_URL")
        self.prefix = f"t{secrets.token_hex(4)}"
        self.templates: dict[str, str] = {}
        self.copies: list[str] = []
        self._count = 0
        self.admin = (create_engine(self.server, isolation_level="AUTOCOMMIT")
                      if self.server else None)

    def _pg_url(self, name: str) -> str:
        return make_url(self.server).set(database=name).render_as_string(hide_password=False)

    def template(self, service: str) -> str:
        if service not in self.templates:
            if self.admin is not None:
                name = f"{self.prefix}_{service}_template"
                with self.admin.connect() as connection:
                    connection.execute(text(f'CREATE DATABASE "{name}"'))
                migrate.upgrade(service, self._pg_url(name))
                self.templates[service] = name
            else:
                path = self.workdir / f"{service}-template.sqlite3"
                migrate.upgrade(service, f"sqlite:///{path}")
                self.templates[service] = str(path)
        return self.templates[service]

    def copy(self, service: str) -> str:
        """The URL of a fresh database of ``service`` at the newest migration."""
        template = self.template(service)
        self._count += 1
        if self.admin is not None:
            name = f"{self.prefix}_{service}_{self._count}"
            with self.admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
            self.copies.append(name)
            return self._pg_url(name)
        path = self.workdir / f"{service}-{self._count}.sqlite3"
        shutil.copyfile(template, path)
        return f"sqlite:///{path}"

    def drop(self, url: str) -> None:
        if self.admin is None:
            Path(make_url(url).database).unlink(missing_ok=True)
            return
        name = make_url(url).database
        with self.admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.copies.remove(name)

    def close(self) -> None:
        if self.admin is None:
            return
        with self.admin.connect() as connection:
            for name in [*self.copies, *self.templates.values()]:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


class WsgiAdapter(BaseAdapter):
    """``requests`` answered by a WSGI app (werkzeug's test client) instead of a socket."""

    def __init__(self, app, after=None) -> None:
        super().__init__()
        self.app = app
        self.after = after

    def send(self, request, **kwargs):
        url = urlsplit(request.url)
        body = request.body
        if isinstance(body, str):
            body = body.encode()
        answer = Client(self.app).open(
            url.path, base_url=f"{url.scheme}://{url.netloc}", query_string=url.query,
            method=request.method, headers=list(request.headers.items()), data=body or b"",
        )
        response = requests.Response()
        response.status_code = answer.status_code
        response.reason = answer.status.partition(" ")[2]
        response.headers = CaseInsensitiveDict(answer.headers)
        response._content = answer.get_data()
        response.encoding = get_encoding_from_headers(response.headers)
        response.url = request.url
        response.request = request
        answer.close()
        if self.after is not None:
            self.after()
        return response

    def close(self) -> None:
        pass


class Router(BaseAdapter):
    """The gateway's routing table without the gateway: ``/api/v1/<x>`` to its owner."""

    def __init__(self, world: World) -> None:
        super().__init__()
        self.world = world

    def send(self, request, **kwargs):
        service = owner(urlsplit(request.url).path)
        if service is None:
            response = requests.Response()
            response.status_code, response._content = 404, b'{"status": 404}'
            response.request, response.url = request, request.url
            return response
        return self.world.adapters[service].send(request, **kwargs)

    def close(self) -> None:
        pass


class EventBus:
    """The outboxes' publisher in place of Celery: signed envelopes queued per receiver and
    handled by the receiver's ``receive`` once the request that caused them is answered."""

    def __init__(self) -> None:
        self.pending: deque[tuple[object, str]] = deque()
        self.apps: dict[str, object] = {}
        self.undelivered: list[tuple[object, str]] = []  # the gateway's audit events
        self.depth = 0

    def attach(self, name: str, app) -> None:
        runtime = app.extensions["buendnis"]
        self.apps[name] = app

        def publish(envelope: dict, queue: str) -> None:
            self.pending.append((runtime.signer.sign(envelope), queue))

        runtime.outbox.publisher = publish  # its rows count as confirmed when published
        runtime.consumer.confirmations = None  # so the consumers confirm nothing to Redis
        runtime.celery.conf.task_always_eager = True
        runtime.celery.conf.task_eager_propagates = True

    def deliver(self) -> int:
        """Handle every pending event, and the events those cause; returns how many."""
        if self.depth:
            return 0  # inside a request: the outermost one delivers
        handled = 0
        self.depth += 1
        try:
            while self.pending:
                message, queue = self.pending.popleft()
                app = self.apps.get(queue)
                if app is None:
                    self.undelivered.append((message, queue))
                    continue
                with app.app_context():
                    app.extensions["buendnis"].receive(message)
                handled += 1
        finally:
            self.depth -= 1
        return handled


class World:
    """Intake, referrals and notifications in this process, each on a fresh database."""

    def __init__(self, templates: Templates, key: TestKey, *, config: dict | None = None) -> None:
        from intake.app import create_app as intake_app
        from notifications.app import create_app as notifications_app
        from referrals.app import create_app as referrals_app

        self.key = key
        self.templates = templates
        self.database_urls = {service: templates.copy(service) for service in SERVICES}
        self.service_urls = {service: service_url(service) for service in SERVICES}
        self.bus = EventBus()
        oidc = OidcSettings(server_url="http://idp.test", realm="buendnis", issuer=ISSUER,
                            jwks_url="http://idp.test/jwks-not-fetched", token_url="",
                            audience=AUDIENCE, jwks_min_refresh_seconds=10, leeway_seconds=0)
        factories = {"intake": intake_app, "referrals": referrals_app,
                     "notifications": notifications_app}
        self.apps = {}
        for service in SERVICES:
            settings = ServiceSettings(
                name=service, database_url=self.database_urls[service], redis_url=NOWHERE,
                oidc=oidc, client_id=f"{service}-service", client_secret="unused",
                service_urls=self.service_urls, http_timeout_seconds=5.0,
                relay_interval_seconds=1.0)
            extra = (config or {}).get(service)
            app = factories[service](settings, extra) if extra else factories[service](settings)
            runtime = app.extensions["buendnis"]
            runtime.verifier.jwks = TestJwks(key)
            self.apps[service] = app
            self.bus.attach(service, app)
        # Requests from a test deliver the events they caused once answered; a service's call
        # to another is part of its request and delivers nothing of its own.
        self.adapters = {s: WsgiAdapter(app, after=self.bus.deliver)
                         for s, app in self.apps.items()}
        inner = {s: WsgiAdapter(app) for s, app in self.apps.items()}
        for service, app in self.apps.items():
            services = app.extensions["buendnis"].services
            services._token, services._expires_at = key.service_token(service), float("inf")
            for name, adapter in inner.items():
                services.http.mount(service_url(name), _Nested(adapter, self.bus))
        self._clients: dict[str, ApiClient] = {}

    def runtime(self, service: str):
        return self.apps[service].extensions["buendnis"]

    def token(self, username: str, password: str = "demo") -> str:
        return self.key.token(username)

    def service_token(self, service: str) -> str:
        return self.key.service_token(service)

    def client(self, base_url: str, token: str) -> ApiClient:
        client = ApiClient(base_url, token)
        client.session.mount(GATEWAY, Router(self))
        for service, adapter in self.adapters.items():
            client.session.mount(service_url(service), adapter)
        return client

    def as_user(self, username: str) -> ApiClient:
        """A demo user calling the API (``/api/v1/…``) as through the gateway."""
        return self.client(GATEWAY, self.token(username))

    def at_service(self, service: str, token: str) -> ApiClient:
        """Someone calling one service directly, past the gateway."""
        return self.client(service_url(service), token)

    def close(self) -> None:
        for app in self.apps.values():
            app.extensions["buendnis"].db.dispose()
        for url in self.database_urls.values():
            self.templates.drop(url)


class _Nested(BaseAdapter):
    """A service's own call to another service: inside a request, so no delivery of its own."""

    def __init__(self, adapter: WsgiAdapter, bus: EventBus) -> None:
        super().__init__()
        self.adapter, self.bus = adapter, bus

    def send(self, request, **kwargs):
        self.bus.depth += 1
        try:
            return self.adapter.send(request, **kwargs)
        finally:
            self.bus.depth -= 1

    def close(self) -> None:
        pass


@pytest.fixture(name="platform")
def in_process_platform(world):
    """Imported by a module whose rules need no worker, clock or socket: there ``platform`` is
    the services in-process (``World``), with the platform's ``as_user``, ``token``,
    ``service_token``, ``database_urls`` and ``service_urls``."""
    return world
