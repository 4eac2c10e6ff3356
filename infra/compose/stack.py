"""The compose stack on this machine: ``python infra/compose/stack.py up|down|status|check``.

``up`` does what a user's ``docker compose up --build`` does, with podman: the local stand-ins
for the public base images (``base/build.sh``: Python 3.11, PostgreSQL 15, Redis, built from
Debian packages once and then reused), the one image (``Dockerfile``, targets ``runtime`` and
``devtools``), a throwaway ``.env`` with random secrets (the production switch refuses demo
ones), ``podman-compose up -d`` with ``docker-compose.yml`` and the CI override
(``docker-compose.ci.yml``: Keycloak and Mailpit replaced), and then waits until every container
is healthy. podman runs no health checks by itself here (no systemd), and podman-compose ignores
``depends_on`` conditions, so this polls ``podman healthcheck run`` itself. It prints the times.
``down`` removes containers, network and volumes. ``check`` (and ``up`` first) says why podman
cannot run here (not root, a tool missing, ``podman info`` failing, no container starting) and
exits 1 instead of pretending.

Used by ``make compose-up`` / ``make compose-down`` and ``tests/compose/test_compose_stack.py``.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "infra" / "compose"
STATE = ROOT / "var" / "compose"
ENV_FILE = STATE / "compose.env"
PROJECT = "buendnis"
TAG = os.environ.get("BUENDNIS_TAG", "dev")
IMAGES = {"runtime": f"localhost/buendnis/buendnis:{TAG}",
          "devtools": f"localhost/buendnis/buendnis-devtools:{TAG}"}
# Reminders in seconds rather than a day ahead, so the story sees one within the test.
TEST_SETTINGS = {"REMINDER_OFFSETS": "20s", "BUENDNIS_TAG": TAG}
SECRETS = ("KC_BOOTSTRAP_ADMIN_PASSWORD", "INTAKE_CLIENT_SECRET", "REFERRALS_CLIENT_SECRET",
           "NOTIFICATIONS_CLIENT_SECRET", "WEB_SECRET_KEY", "REDIS_PASSWORD", "EVENT_SIGNING_KEY",
           "AUDIT_CHAIN_KEY", "DUPLICATE_MATCH_KEY", "POSTGRES_PASSWORD", "INTAKE_DB_PASSWORD",
           "REFERRALS_DB_PASSWORD", "NOTIFICATIONS_DB_PASSWORD", "GATEWAY_DB_PASSWORD",
           "GATEWAY_APP_DB_PASSWORD", "SMS_WEBHOOK_SECRET", "ANSWER_LINK_KEY")


def env() -> dict[str, str]:
    environment = dict(os.environ)
    environment.setdefault("CONTAINERS_CONF", str(HERE / "containers.conf"))
    bin_dir = str(Path(sys.executable).parent)
    environment["PATH"] = f"{bin_dir}:{environment.get('PATH', '')}"
    return environment


def run(*command: str, check: bool = True, capture: bool = False,
        timeout: float | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, env=env(), check=check, text=True,  # noqa: S603
                          capture_output=capture, timeout=timeout)


def compose(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return run("podman-compose", "--env-file", str(ENV_FILE), "-f", "docker-compose.yml",
               "-f", "docker-compose.ci.yml", *args, **kwargs)


def check_engine() -> None:
    """Say why podman cannot run here, instead of pretending."""
    if os.geteuid() != 0:
        raise SystemExit(
            f"stack: the compose stack runs under podman as root (debootstrap and chroot for the "
            f"base images, runc with cgroupfs, the stack's own network); this is uid "
            f"{os.geteuid()}. Run it as root (sudo make test-compose).")
    for tool in ("podman", "podman-compose", "debootstrap", "runc"):
        if not shutil.which(tool, path=env()["PATH"]):
            raise SystemExit(f"stack: {tool} is missing (infra/compose/install-podman.sh)")
    probe = run("podman", "info", "--format", "{{.Host.OCIRuntime.Name}}", check=False,
                capture=True)
    if probe.returncode != 0:
        raise SystemExit(f"stack: podman cannot run here:\n{probe.stderr}")


def check_containers_run() -> None:
    """One throwaway container from the Python base image: where podman is installed but cannot
    start a container (no cgroups to write, no namespaces), say so before building anything."""
    probe = run("podman", "run", "--rm", "--network", "none", "docker.io/library/python:3.11-slim",
                "python3", "-c", "print('ok')", check=False, capture=True, timeout=120)
    if probe.returncode != 0 or probe.stdout.strip() != "ok":
        raise SystemExit(f"stack: podman cannot start a container here "
                         f"(exit {probe.returncode}):\n{probe.stderr.strip()[-2000:]}")


def write_env() -> None:
    """A throwaway .env with random secrets: the stack runs as production (BUENDNIS_ENV's
    default), which refuses demo values."""
    STATE.mkdir(parents=True, exist_ok=True)
    values = {name: secrets.token_urlsafe(32) for name in SECRETS}
    values["SMS_PROVIDER_URL"] = "http://mailpit:9/messages"  # no SMS in the story
    values.update(TEST_SETTINGS)
    # The network's name for this run (docker-compose.ci.yml says why).
    values["BUENDNIS_CI_RUN"] = f"{int(time.time())}_{secrets.token_hex(3)}"
    ENV_FILE.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
    ENV_FILE.chmod(0o600)


def env_values() -> dict[str, str]:
    return dict(line.split("=", 1) for line in ENV_FILE.read_text(encoding="utf-8").splitlines()
                if "=" in line)


def build_mounts() -> list[str]:
    """This machine reaches PyPI through a proxy whose certificate authority only the host trusts
    (and names in its pip configuration): lend both to the build's RUN steps, read-only. Nothing
    of them stays in the image."""
    mounts = []
    if Path("/etc/ssl/certs").is_dir():
        mounts += ["--volume", "/etc/ssl/certs:/etc/ssl/certs:ro"]
    pip_conf = STATE / "pip.conf"
    STATE.mkdir(parents=True, exist_ok=True)
    pip_conf.write_text("[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n", encoding="utf-8")
    mounts += ["--volume", f"{pip_conf}:/etc/pip.conf:ro"]
    return mounts


def build_context() -> str:
    """The working tree, or with ``BUENDNIS_BUILD_FROM=<revision>`` that commit alone (a shared
    checkout's unfinished changes stay out of the image)."""
    revision = os.environ.get("BUENDNIS_BUILD_FROM")
    if not revision:
        return "."
    context = STATE / "context"
    shutil.rmtree(context, ignore_errors=True)
    context.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", revision], cwd=ROOT, check=True,  # noqa: S603,S607
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(context)], input=archive, check=True)  # noqa: S603,S607
    return str(context)


def build() -> None:
    run(str(HERE / "base" / "build.sh"))
    check_containers_run()
    context = build_context()
    for target, image in IMAGES.items():
        # The docker format: OCI images have no HEALTHCHECK.
        run("podman", "build", "--quiet", "--format", "docker", *build_mounts(), "--target",
            target, "-t", image, context)


def containers() -> list[dict]:
    listing = run("podman", "ps", "-a", "--filter", f"label=io.podman.compose.project={PROJECT}",
                  "--format", "json", capture=True)
    return json.loads(listing.stdout or "[]")


def service_of(container: dict) -> str:
    return (container.get("Labels") or {}).get("com.docker.compose.service", "")


def container_name(service: str) -> str:
    for container in containers():
        if service_of(container) == service:
            return container["Names"][0]
    raise LookupError(service)


def wait_healthy(timeout: float = 600) -> float:
    """Poll until every one-shot migration exited 0 and every container with a health check is
    healthy (running its check ourselves: podman does not here). Seconds it took."""
    started = time.monotonic()
    pending: set[str] = set()
    healthy: set[str] = set()  # checked once; a check costs a process (a Celery ping: seconds)
    while time.monotonic() - started < timeout:
        pending = set()
        for container in containers():
            name, service = container["Names"][0], service_of(container)
            if name in healthy:
                continue
            state = run("podman", "inspect", name, "--format",
                        "{{.State.Status}} {{.State.ExitCode}} {{if .Config.Healthcheck}}hc{{end}}",
                        capture=True, check=False).stdout.split()
            if service.endswith("-migrate"):
                if state[:2] != ["exited", "0"]:
                    if state[:1] == ["exited"] and state[1] != "0":
                        logs = run("podman", "logs", "--tail", "30", name, capture=True,
                                   check=False)
                        raise RuntimeError(f"{service} failed:\n{logs.stdout}{logs.stderr}")
                    pending.add(service)
                continue
            if state[:1] != ["running"]:
                pending.add(service)
                continue
            if "hc" in state:
                # On a loaded machine (two cores, twenty containers starting) a worker's Celery
                # ping can take longer than a minute: not yet healthy, asked again next round.
                try:
                    check = run("podman", "healthcheck", "run", name, check=False, capture=True,
                                timeout=60)
                except subprocess.TimeoutExpired:
                    pending.add(service)
                    continue
                if check.returncode != 0:
                    pending.add(service)
                    continue
            healthy.add(name)
        if not pending and containers():
            return time.monotonic() - started
        time.sleep(3)
    raise TimeoutError(f"not healthy after {timeout:.0f} s: {sorted(pending)}")


def up() -> dict[str, float]:
    check_engine()
    times: dict[str, float] = {}
    began = time.monotonic()
    build()
    times["build"] = time.monotonic() - began
    write_env()
    compose("down", "-v", check=False, capture=True)
    began = time.monotonic()
    # --no-deps: podman 4.3 cannot start a container whose `--requires` dependencies have
    # dependencies of their own ("not found in input list"); podman-compose still starts the
    # services in the order of depends_on, and each role waits for what it needs itself.
    for attempt in (1, 2):
        started = compose("up", "-d", "--no-deps", capture=True, check=False)
        if started.returncode == 0:
            break
        # Was seen once in five runs: podman 4.3 answering 125 on the web front end's start,
        # its fixed address taken (fixed by a fresh network name per run, docker-compose.ci.yml).
        # Kept as a guard: say what podman said, clear up, and try once more.
        print(f"stack: `up` failed ({started.returncode}), attempt {attempt}:\n"
              + "\n".join(line for line in started.stderr.splitlines()[-15:]
                           if "systemd" not in line), file=sys.stderr, flush=True)
        compose("down", "-v", check=False, capture=True)
        began = time.monotonic()
    else:
        raise RuntimeError("podman-compose up failed twice")
    times["up_to_healthy"] = wait_healthy()
    print(f"stack: images ready in {times['build']:.0f} s; up to healthy in "
          f"{times['up_to_healthy']:.0f} s (time.monotonic since `up -d`)", flush=True)
    print("stack: gateway http://127.0.0.1:8000, identity provider http://localhost:8080, "
          "web front end http://localhost:8090", flush=True)
    return times


def logs(tail: int = 40) -> str:
    out = []
    for container in containers():
        result = run("podman", "logs", "--tail", str(tail), container["Names"][0], check=False,
                     capture=True)
        out.append(f"----- {service_of(container)} -----\n{result.stdout}{result.stderr}")
    return "\n".join(out)


def down() -> None:
    if ENV_FILE.exists():
        compose("down", "-v", check=False, capture=True)
    else:
        write_env()
        compose("down", "-v", check=False, capture=True)
        ENV_FILE.unlink()


def main(argv: list[str]) -> int:
    action = argv[0] if argv else ""
    if action == "up":
        try:
            up()
        except (RuntimeError, TimeoutError) as exc:
            print(logs(), file=sys.stderr)
            print(f"stack: {exc}", file=sys.stderr)
            return 1
        return 0
    if action == "down":
        down()
        return 0
    if action == "check":
        check_engine()
        return 0
    if action == "status":
        for container in containers():
            print(service_of(container), container.get("State"), container.get("Status"))
        return 0
    print("usage: python infra/compose/stack.py up|down|status|check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
