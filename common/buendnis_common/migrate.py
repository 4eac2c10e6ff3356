"""Alembic for every service: ``python -m buendnis_common.migrate intake [revision]``.

Each service keeps its migrations beside its package (``services/intake/migrations``); its
``env.py`` calls ``run_migrations`` with the service's metadata.

Migrations may run as another database role than the service: ``<SERVICE>_MIGRATE_DATABASE_URL``
(the owner), where ``<SERVICE>_DATABASE_URL`` names the role the service runs as. On PostgreSQL,
when the two roles differ and the service's ``models`` module declares ``RUNTIME_GRANTS``, the
running role is granted exactly those rights after every upgrade (the gateway: append to and read
the audit trail, nothing more).
"""
from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import make_url

from .db import UtcDateTime, connect_patiently, make_engine
from .settings import ServiceSettings, SettingsError, env_database_url
from .signing import EventSigner

log = logging.getLogger(__name__)

SERVICES = ("intake", "referrals", "notifications", "gateway")


def migrations_dir(service: str) -> Path:
    # Through a module file, not the package: run from the repository root, the folder
    # ``gateway/`` is also a namespace package named ``gateway``, without a ``__file__``.
    models = importlib.import_module(f"{service}.models")
    return Path(models.__file__).resolve().parent.parent / "migrations"


def alembic_config(service: str, database_url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir(service)))
    config.attributes["database_url"] = database_url or migrate_url(service)
    return config


def migrate_url(service: str) -> str:
    """The owner's URL for migrations; by default the service's own."""
    return (env_database_url(f"{service.upper()}_MIGRATE_DATABASE_URL", "")
            or ServiceSettings.from_env(service).database_url)


def upgrade(service: str, database_url: str | None = None, revision: str = "head", *,
            runtime_role: str | None = None) -> None:
    """Upgrade; then grant the running role its rights (from the environment, or
    ``runtime_role`` with an explicit ``database_url``)."""
    command.upgrade(alembic_config(service, database_url), revision)
    url = database_url or migrate_url(service)
    if runtime_role is None and database_url is None:
        runtime_role = make_url(ServiceSettings.from_env(service).database_url).username
    if runtime_role:
        grant_runtime_role(service, url, runtime_role)


def grant_runtime_role(service: str, owner_url: str, role: str) -> None:
    """On PostgreSQL: give ``role`` the service's ``RUNTIME_GRANTS``, if it declares any and
    ``role`` is not the owner itself (then there is nothing to restrict: say so)."""
    grants = getattr(importlib.import_module(f"{service}.models"), "RUNTIME_GRANTS", None)
    if not grants or make_url(owner_url).get_backend_name() != "postgresql":
        return
    engine = make_engine(owner_url)
    try:
        with connect_patiently(engine) as connection, connection.begin():
            if connection.scalar(text("SELECT current_user")) == role:
                log.warning("%s runs as the owner of its database: nothing restricts it", service)
                return
            quote = connection.dialect.identifier_preparer.quote
            for table, privileges in grants.items():
                connection.execute(text(f"GRANT {privileges} ON {quote(table)} TO {quote(role)}"))
            connection.execute(text(
                f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {quote(role)}"))
    finally:
        engine.dispose()


def downgrade(service: str, database_url: str | None = None, revision: str = "-1") -> None:
    command.downgrade(alembic_config(service, database_url), revision)


def _render_item(type_: str, obj, autogen_context):
    """Migrations name plain SQLAlchemy types, not the app's decorators, so they stay valid
    when the app's code changes."""
    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations(metadata: MetaData) -> None:
    """The body of every service's ``env.py``."""
    config = context.config
    url = config.attributes.get("database_url")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(url)
    try:
        # The entry point waited for the database, but in a compose network its name may fail to
        # resolve for a moment while twenty containers start (seen once in CI: "Temporary
        # failure in name resolution"); a one-shot migration that gave up then would never run.
        with connect_patiently(engine) as connection:
            context.configure(
                connection=connection,
                target_metadata=metadata,
                render_as_batch=connection.dialect.name == "sqlite",
                render_item=_render_item,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


def check_secrets(service: str) -> None:
    """Outside development a migration, like every process, refuses demo secrets: the
    service's settings and, when its ``app`` module has one, its ``check_secrets()``."""
    ServiceSettings.from_env(service)
    migrate_url(service)
    EventSigner.from_env()
    app_module = importlib.import_module(f"{service}.app")
    if hasattr(app_module, "check_secrets"):
        app_module.check_secrets()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in (*SERVICES, "all"):
        print(f"usage: python -m buendnis_common.migrate {{{'|'.join(SERVICES)}|all}} [revision]")
        return 2
    revision = args[1] if len(args) > 1 else "head"
    services = SERVICES if args[0] == "all" else (args[0],)
    try:
        for service in services:
            check_secrets(service)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for service in services:
        upgrade(service, revision=revision)
        print(f"{service}: database at {revision}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
