"""Alembic for every service: ``python -m buendnis_common.migrate intake [revision]``.

Each service keeps its migrations beside its package (``services/intake/migrations``); its
``env.py`` calls ``run_migrations`` with the service's metadata.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData

from .db import UtcDateTime, make_engine
from .settings import ServiceSettings, SettingsError

SERVICES = ("intake", "referrals", "notifications", "gateway")


def migrations_dir(service: str) -> Path:
    # Through a module file, not the package: run from the repository root, the folder
    # ``gateway/`` is also a namespace package named ``gateway``, without a ``__file__``.
    models = importlib.import_module(f"{service}.models")
    return Path(models.__file__).resolve().parent.parent / "migrations"


def alembic_config(service: str, database_url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir(service)))
    url = database_url or ServiceSettings.from_env(service).database_url
    config.attributes["database_url"] = url
    return config


def upgrade(service: str, database_url: str | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(service, database_url), revision)


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
        with engine.connect() as connection:
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
