"""What every service does alike: health, its own token check, the error body, migrations."""
from __future__ import annotations

import contextlib
import importlib
import os
import secrets
import socket
import threading
import time

import pytest
import requests
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from buendnis_common import migrate
from tests.support.platform import SERVICES, free_port
from tests.test_event_batches import database_url  # noqa: F401 - a fixture

pytestmark = pytest.mark.platform


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_reports_health(platform, service):
    response = requests.get(f"{platform.service_urls[service]}/healthz", timeout=5)
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_checks_the_token_itself(platform, service):
    """Defence in depth: a request that bypasses the gateway is still refused."""
    url = f"{platform.service_urls[service]}/api/v1/participants"
    assert requests.get(url, timeout=5).status_code == 401
    forged = requests.get(url, headers={"Authorization": "Bearer a.b.c"}, timeout=5)
    assert forged.status_code == 401
    assert forged.json()["status"] == "Unauthorized"
    as_service = requests.get(
        url, headers={"Authorization": f"Bearer {platform.service_token('intake')}"}, timeout=5
    )
    assert as_service.status_code == 403


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_answers_404_and_405_with_the_error_body(platform, service):
    headers = {"Authorization": f"Bearer {platform.token('cw.jmd-leverkusen')}"}
    base = platform.service_urls[service]
    missing = requests.get(f"{base}/api/v1/no-such-thing", headers=headers, timeout=5)
    assert missing.status_code == 404
    assert set(missing.json()) == {"code", "status", "message", "error_code", "params"}
    assert missing.json()["error_code"] == "policy.no_such_endpoint"
    wrong = requests.delete(f"{base}/healthz", headers=headers, timeout=5)
    assert wrong.status_code == 405
    assert wrong.json()["code"] == 405


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_publishes_its_openapi_document(platform, service):
    document = requests.get(f"{platform.service_urls[service]}/openapi.json", timeout=5).json()
    assert document["openapi"].startswith("3.")
    assert "bearerAuth" in document["components"]["securitySchemes"]


def test_an_unexpected_error_is_a_500_with_the_error_body_and_no_details():
    from intake.app import create_app

    app = create_app()

    def boom():
        raise RuntimeError("secret detail about Samir Haddad")

    # A public route (no token, no policy refusal) whose view fails unexpectedly.
    app.view_functions["healthz"] = boom
    response = app.test_client().get("/healthz")
    assert response.status_code == 500
    assert response.json["status"] == "Internal Server Error"
    assert response.json["error_code"] == "service.internal_error"
    assert "Samir" not in response.get_data(as_text=True)


@pytest.mark.parametrize("service", SERVICES)
def test_migrations_build_and_remove_the_schema(tmp_path, service):
    url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    migrate.upgrade(service, url)
    engine = create_engine(url)
    tables = set(inspect(engine).get_table_names())
    assert {"outbox", "processed_events", "audit_log", "alembic_version"} <= tables
    migrate.downgrade(service, url, revision="base")
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    engine.dispose()


@pytest.mark.parametrize("service", migrate.SERVICES)
def test_the_migrated_schema_is_the_one_the_models_describe(database_url, service):  # noqa: F811
    """Alembic's own comparison of the models with the database its revisions built (tables,
    columns, types, nullability, indexes): a revision that forgets a column, or a model changed
    without one, is a difference. On SQLite, or on PostgreSQL with BUENDNIS_TEST_PG_URL."""
    models = importlib.import_module(f"{service}.models")
    engine = create_engine(database_url(service))
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = [diff for diff in compare_metadata(context, models.Base.metadata)
                       if not _alembic_only(diff)]
    engine.dispose()
    assert differences == []


def _alembic_only(diff) -> bool:
    """Alembic's bookkeeping table is in the database, not in the models."""
    return diff[0] == "remove_table" and diff[1].name == "alembic_version"


class LateDatabase:
    """A TCP port that answers nothing for ``delay`` seconds, then passes every connection on to
    the real database server: a database whose name or address comes up after the migration
    started (a compose network while twenty containers start)."""

    def __init__(self, target: tuple[str, int], delay: float) -> None:
        self.target, self.delay = target, delay
        self.port = free_port()
        self.connections = 0
        self.stopped = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        if self.stopped.wait(self.delay):
            return
        with socket.create_server(("127.0.0.1", self.port)) as server:
            server.settimeout(0.2)
            while not self.stopped.is_set():
                try:
                    client, _ = server.accept()
                except TimeoutError:
                    continue
                self.connections += 1
                upstream = socket.create_connection(self.target)
                for source, sink in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def test_a_migration_waits_for_a_database_that_comes_up_after_it_started(monkeypatch):
    """A one-shot migration that gave up at the first refused connection would never run again
    (CI saw "Temporary failure in name resolution" once, after the entry point's wait had
    passed): connecting is retried for BUENDNIS_WAIT_SECONDS, and the schema is then complete."""
    admin = os.environ.get("BUENDNIS_TEST_PG_URL")
    if not admin:
        pytest.skip("needs a database server (BUENDNIS_TEST_PG_URL); SQLite is not retried")
    name = f"t{secrets.token_hex(4)}_late"
    server = create_engine(admin, isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    parsed = make_url(admin)
    late = LateDatabase((parsed.host, parsed.port or 5432), delay=3)
    url = parsed.set(host="127.0.0.1", port=late.port, database=name)
    monkeypatch.setenv("BUENDNIS_WAIT_SECONDS", "60")
    try:
        began = time.monotonic()
        migrate.upgrade("notifications", url.render_as_string(hide_password=False))
        waited = time.monotonic() - began
        assert waited >= 3, waited  # it did meet the closed port first
        assert late.connections >= 1
        engine = create_engine(parsed.set(database=name))
        with engine.connect() as connection:
            assert {"outbox", "processed_events", "audit_log", "alembic_version"} <= set(
                inspect(connection).get_table_names())
        engine.dispose()
    finally:
        late.stopped.set()
        with server.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


def test_a_migration_gives_up_on_a_database_that_never_answers(monkeypatch):
    """… and after BUENDNIS_WAIT_SECONDS without an answer it fails, with the connection's error
    (the one-shot migration's failure is what the operator sees)."""
    monkeypatch.setenv("BUENDNIS_WAIT_SECONDS", "1")
    began = time.monotonic()
    with pytest.raises(OperationalError):
        migrate.upgrade("notifications",
                        f"postgresql+psycopg://buendnis@127.0.0.1:{free_port()}/buendnis")
    assert 1 <= time.monotonic() - began < 30
