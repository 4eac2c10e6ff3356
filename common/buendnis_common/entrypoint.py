"""``buendnis <component> <role>``: the one entry point of the one image (and of the Procfile).

One image holds every Python component (the Dockerfile at the repository root); what a container
is, is said by its command: ``buendnis referrals worker``. So the compose file, the Procfile and the
Kubernetes Deployments name roles of the same image, and the commands behind a role (gunicorn with
``gunicorn.conf.py``, Celery's worker on the component's own queue, beat, Alembic) are written once,
here. Arguments after the role are passed on (``buendnis intake web --bind 127.0.0.1:8001``).

``buendnis healthcheck`` is the image's HEALTHCHECK: a web role answers on ``/healthz``; a worker
answers Celery's ping; beat and a migration count as healthy while they run.

Before a service's role starts, the entry point waits for its database to accept connections
(``BUENDNIS_WAIT_SECONDS``, 120 by default): compose engines that ignore ``depends_on`` conditions
(podman-compose) and Kubernetes start everything at once, and a migration that gives up at once
would never run again. If the database has not answered by then, the role does not start: the
entry point says so (which database, how long, the error's class) and exits 1, so the engine's
restart policy or the one-shot migration's failure shows it. Celery retries the broker by itself.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sys
import urllib.request
from pathlib import Path

SERVICES = ("intake", "referrals", "notifications", "gateway")
COMPONENTS = (*SERVICES, "web")
ROLES = {name: ("web", "worker", "beat", "migrate") for name in SERVICES} | {"web": ("web",)}
# Where the running role is noted for `buendnis healthcheck` (a separate process).
ROLE_FILE = Path(os.environ.get("BUENDNIS_ROLE_FILE", "/tmp/buendnis-role"))
USAGE = (
    "usage: buendnis <component> <role> [arguments …]\n"
    "       buendnis healthcheck\n"
    "components and roles: "
    + "; ".join(f"{name}: {', '.join(roles)}" for name, roles in ROLES.items())
)


def gunicorn_config() -> str:
    """``gunicorn.conf.py``: ``GUNICORN_CONFIG``, else the working folder's (the repository root
    for ``make run``, ``/app`` in the image)."""
    return os.environ.get("GUNICORN_CONFIG") or str(Path.cwd() / "gunicorn.conf.py")


def command(component: str, role: str, extra: list[str]) -> list[str]:
    if component not in ROLES or role not in ROLES[component]:
        raise SystemExit(f"buendnis: unknown component or role {component!r} {role!r}\n{USAGE}")
    app = f"{component}.worker"
    if role == "web":
        return ["gunicorn", "--config", gunicorn_config(), *extra, f"{component}.app:create_app()"]
    if role == "worker":
        return ["celery", "-A", app, "worker", "--loglevel", os.environ.get("LOG_LEVEL", "INFO"),
                "-Q", component, "-n", f"{component}@%h", *extra]
    if role == "beat":
        schedule = Path(os.environ.get("BUENDNIS_VAR", "var")) / f"celerybeat-{component}"
        return ["celery", "-A", app, "beat", "--loglevel", os.environ.get("LOG_LEVEL", "INFO"),
                "--schedule", str(schedule), *extra]
    return [sys.executable, "-m", "buendnis_common.migrate", component, *extra]


def wait_for_database(component: str, role: str) -> None:
    """Until the component's database answers; after ``BUENDNIS_WAIT_SECONDS`` without an answer,
    exit 1 with a message saying so (the role does not start)."""
    prefix = component.upper()
    url = (os.environ.get(f"{prefix}_MIGRATE_DATABASE_URL") if role == "migrate" else None) or (
        os.environ.get(f"{prefix}_DATABASE_URL"))
    if not url or url.startswith("sqlite"):
        return
    from sqlalchemy import create_engine, text  # noqa: PLC0415 - only where a database is used
    from sqlalchemy.exc import OperationalError  # noqa: PLC0415

    from .db import connect_patiently, wait_seconds  # noqa: PLC0415

    def waiting(exc: OperationalError) -> None:
        # The error's class only: its message may carry the host and the role's name.
        print(f"buendnis: waiting for the {component} database ({type(exc.orig).__name__})",
              file=sys.stderr, flush=True)

    limit = wait_seconds()
    engine = create_engine(url, pool_pre_ping=False)
    try:
        with connect_patiently(engine, limit, on_wait=waiting) as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as exc:
        raise SystemExit(
            f"buendnis: the {component} database did not answer within {limit:.0f} s "
            f"({type(exc.orig).__name__}); {component} {role} not started "
            "(BUENDNIS_WAIT_SECONDS sets the limit)") from None
    finally:
        engine.dispose()


def _note_role(component: str, role: str) -> None:
    # A read-only /tmp: the health check then only checks that the process runs.
    with contextlib.suppress(OSError):
        ROLE_FILE.write_text(f"{component} {role}\n", encoding="utf-8")


def healthcheck() -> int:
    try:
        component, role = ROLE_FILE.read_text(encoding="utf-8").split()
    except (OSError, ValueError):
        return 1
    if role == "web":
        bind = os.environ.get("BUENDNIS_BIND", "0.0.0.0:8000")
        port = bind.rpartition(":")[2]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
                return 0 if answer.status == 200 else 1
        except OSError:
            return 1
    if role == "worker":
        celery = shutil.which("celery") or "celery"
        node = f"{component}@{socket.gethostname()}"
        os.execvp(celery, [celery, "-A", f"{component}.worker", "inspect", "ping",
                           "--destination", node, "--timeout", "5"])
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["healthcheck"]:
        return healthcheck()
    if len(args) < 2 or args[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr)
        return 2
    component, role, *extra = args
    argv_ = command(component, role, extra)
    os.environ["BUENDNIS_COMPONENT"] = component
    if component in SERVICES:
        wait_for_database(component, role)
    _note_role(component, role)
    program = argv_[0] if role == "migrate" else (shutil.which(argv_[0]) or argv_[0])
    os.execvp(program, argv_)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())
