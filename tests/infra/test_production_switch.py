"""``BUENDNIS_ENV=production``: no process starts with a demo secret or key.

Each case starts a real process as the Procfile and compose do (gunicorn, a Celery worker or beat,
a migration, the local identity provider) with ``BUENDNIS_ENV=production`` and one secret left at
its demo value or unset, and shows that it exits non-zero naming that variable; with real values
the same processes start and answer.

The processes are forked from one fork server per module (tests/support/forkserver.py), which has
imported Flask, SQLAlchemy, Celery, Alembic and gunicorn once: each still runs the console script
or ``python -m`` module the command names, in a session of its own, under the case's environment,
and imports the platform's own packages afresh; it only skips the seconds of third-party imports.
"""
from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.forkserver import ForkServer
from tests.support.platform import BIN, REPO, free_port, wait_for

ENV_EXAMPLE = REPO / ".env.example"
SOURCES = ("common", "gateway", "services", "web")
#: Every secret read through env_secret("NAME", …) anywhere in the platform's code.
SECRET_CALL = re.compile(r'env_secret\(\s*(?:f?"([A-Z][A-Z0-9_]*)")')


def platform_secrets() -> set[str]:
    names = {"INTAKE_CLIENT_SECRET", "REFERRALS_CLIENT_SECRET", "NOTIFICATIONS_CLIENT_SECRET"}
    for folder in SOURCES:
        for path in (REPO / folder).rglob("*.py"):
            if ".venv" not in path.parts:
                names |= set(SECRET_CALL.findall(path.read_text(encoding="utf-8")))
    return names


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def session_env() -> dict[str, str]:
    """The test session's environment without the platform's secrets, the venv first on PATH."""
    env = {k: v for k, v in os.environ.items() if k not in platform_secrets()}
    env.update(PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", PYTHONUNBUFFERED="1")
    return env


@pytest.fixture(scope="module")
def forks(tmp_path_factory) -> Iterator[ForkServer]:
    """The fork server that starts this module's processes, stopped with the module."""
    server = ForkServer(session_env(), tmp_path_factory.mktemp("forks"))
    yield server
    server.close()


@pytest.fixture()
def real_env(tmp_path: Path) -> dict[str, str]:
    """Production with a real (random) value for every secret and throwaway databases."""
    env = session_env()
    env.update(
        BUENDNIS_ENV="production",
        BUENDNIS_VAR=str(tmp_path / "var"),
        # Nothing listens there: the processes must decide before they connect anywhere.
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
    )
    for service in ("intake", "referrals", "notifications", "gateway"):
        env[f"{service.upper()}_DATABASE_URL"] = f"sqlite:///{tmp_path / service}.sqlite3"
    for name in platform_secrets():
        env[name] = secrets.token_urlsafe(32)
    return env


def gunicorn(app: str, port: int) -> list[str]:
    return [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "1",
            "--timeout", "60", f"{app}.app:create_app()"]


def celery(service: str, role: str, tmp: Path) -> list[str]:
    if role == "beat":
        return [str(BIN / "celery"), "-A", f"{service}.worker", "beat", "--schedule",
                str(tmp / f"beat-{service}")]
    return [str(BIN / "celery"), "-A", f"{service}.worker", "worker", "-Q", service,
            "--concurrency", "1"]


def run_to_exit(forks: ForkServer, command: list[str],
                env: dict[str, str]) -> subprocess.CompletedProcess:
    return forks.run(command, env=env, cwd=REPO, timeout=90)


def refused(forks: ForkServer, command: list[str], env: dict[str, str], name: str,
            within: float = 30) -> bool:
    """Whether the process exits non-zero naming ``name`` (False if it is still running)."""
    process = forks.start(command, env=env, cwd=REPO, merge_stderr=True)
    try:
        process.wait(within)
    except subprocess.TimeoutExpired:
        process.killpg(signal.SIGTERM)
        process.wait(30)
        return False
    output, _ = process.output()
    return process.returncode != 0 and name in output


def command_for(kind: str, tmp: Path) -> list[str]:
    python = str(BIN / "python")
    if kind.startswith("gunicorn:"):
        return gunicorn(kind.split(":")[1], free_port())
    if kind.startswith("celery:"):
        _, service, role = kind.split(":")
        return celery(service, role, tmp)
    if kind.startswith("migrate:"):
        return [python, "-m", "buendnis_common.migrate", kind.split(":")[1]]
    raise ValueError(kind)


# (process, variable, value): None unsets it, "example" takes the value of .env.example.
REFUSALS = [
    ("gunicorn:intake", "INTAKE_CLIENT_SECRET", "example"),
    ("gunicorn:intake", "DUPLICATE_MATCH_KEY", None),
    ("celery:intake:worker", "DUPLICATE_MATCH_KEY", "example"),
    ("migrate:intake", "DUPLICATE_MATCH_KEY", "example"),
    ("migrate:intake", "INTAKE_CLIENT_SECRET", None),
    ("gunicorn:referrals", "REFERRALS_CLIENT_SECRET", "example"),
    ("celery:referrals:worker", "REFERRALS_CLIENT_SECRET", None),
    ("celery:referrals:beat", "REFERRALS_CLIENT_SECRET", "example"),
    ("gunicorn:notifications", "NOTIFICATIONS_CLIENT_SECRET", "example"),
    ("celery:notifications:worker", "NOTIFICATIONS_CLIENT_SECRET", None),
    ("migrate:notifications", "NOTIFICATIONS_CLIENT_SECRET", "example"),
    ("gunicorn:notifications", "SMS_WEBHOOK_SECRET", None),
    ("celery:notifications:worker", "SMS_WEBHOOK_SECRET", "example"),
    ("gunicorn:referrals", "ANSWER_LINK_KEY", "example"),
    ("celery:notifications:beat", "ANSWER_LINK_KEY", None),
    ("gunicorn:web", "WEB_SECRET_KEY", "example"),
    ("gunicorn:web", "WEB_SECRET_KEY", None),
    # A value of one's own that still looks like a demo value.
    ("gunicorn:referrals", "REFERRALS_CLIENT_SECRET", "demo-changed-but-still-a-demo"),
    # Compose's demo database passwords, in the URLs the services and migrations get.
    ("gunicorn:intake", "INTAKE_DATABASE_URL",
     "postgresql+psycopg://intake:intake-demo@127.0.0.1:1/intake"),
    ("migrate:gateway", "GATEWAY_MIGRATE_DATABASE_URL",
     "postgresql+psycopg://gateway:gateway-demo@127.0.0.1:1/gateway"),
    ("celery:gateway:worker", "GATEWAY_DATABASE_URL",
     "postgresql+psycopg://gateway_app:gateway-app-demo@127.0.0.1:1/gateway"),
]


@pytest.mark.parametrize(("kind", "name", "value"), REFUSALS,
                         ids=[f"{k}-{n}-{v or 'unset'}" for k, n, v in REFUSALS])
def test_a_process_refuses_a_demo_or_missing_secret_in_production(
    forks, real_env, tmp_path, kind, name, value
):
    env = dict(real_env)
    if value is None:
        env.pop(name, None)
    else:
        env[name] = env_example()[name] if value == "example" else value
    result = run_to_exit(forks, command_for(kind, tmp_path), env)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-2000:]
    assert name in output, output[-2000:]
    assert "BUENDNIS_ENV=production" in output and "of your own" in output, output[-2000:]


def test_every_secret_of_the_platform_is_refused_by_some_process(forks, real_env, tmp_path):
    """Secrets added later (event signing, audit chain …) are checked at start too: left unset,
    one of the gateway, a service or its worker refuses to start and names it."""
    covered = {name for _kind, name, _value in REFUSALS}
    assert {"EVENT_SIGNING_KEY", "AUDIT_CHAIN_KEY"} <= platform_secrets()
    for name in sorted(platform_secrets() - covered):
        env = dict(real_env)
        env.pop(name)
        kinds = ("migrate:gateway", "gunicorn:gateway", "celery:gateway:worker",
                 "migrate:intake", "gunicorn:intake", "celery:referrals:worker")
        if not any(refused(forks, command_for(kind, tmp_path), env, name) for kind in kinds):
            pytest.fail(f"{name}: every process started without it in production")


@pytest.mark.parametrize("kind", ["migrate:gateway", "gunicorn:gateway", "celery:gateway:worker",
                                  "migrate:referrals", "celery:notifications:beat"])
def test_event_and_audit_keys_left_at_demo_values_stop_the_gateway_and_services(
    forks, real_env, tmp_path, kind
):
    env = {**real_env, "EVENT_SIGNING_KEY": env_example()["EVENT_SIGNING_KEY"]}
    if kind.split(":")[1] == "gateway":
        env["AUDIT_CHAIN_KEY"] = env_example()["AUDIT_CHAIN_KEY"]
    assert refused(forks, command_for(kind, tmp_path), env, "_KEY is still a demo value")


def test_local_identity_provider_refuses_to_run_in_production(forks, real_env):
    result = run_to_exit(forks, [str(BIN / "python"), "-m", "buendnis_idp", "--port", "0"],
                         real_env)
    assert result.returncode != 0
    assert "BUENDNIS_ENV=production" in result.stderr
    assert "development only" in result.stderr


def test_an_unknown_environment_name_is_refused(forks, real_env, tmp_path):
    env = {**real_env, "BUENDNIS_ENV": "prod"}
    result = run_to_exit(forks, command_for("migrate:intake", tmp_path), env)
    assert result.returncode != 0
    assert "BUENDNIS_ENV must be one of development, production" in result.stderr


@pytest.mark.parametrize("app", ["intake", "gateway", "web"])
def test_with_real_values_the_processes_start(forks, real_env, app):
    port = free_port()
    process = forks.start(gunicorn(app, port), env=real_env, cwd=REPO, merge_stderr=True)
    try:
        answer = wait_for(
            lambda: process.poll() is None
            and requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2),
            timeout=60, what=f"{app} answering /healthz",
        )
        assert answer.status_code == 200
    finally:
        process.killpg(signal.SIGTERM)
        process.wait(30)


def test_with_real_values_the_migration_runs(forks, real_env, tmp_path):
    result = run_to_exit(forks, command_for("migrate:intake", tmp_path), real_env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "intake: database at head" in result.stdout
