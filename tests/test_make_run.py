"""The README's first command: `make run` starts everything, loads the demo alliance, answers a
demo user, serves the web front end, keeps query strings out of its access logs, starts a
crashed process again (supervisor, saying so in its output), and leaves no process behind when
stopped."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.support.platform import REPO, free_port, wait_for

pytestmark = pytest.mark.platform


def processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def command_line(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def the_process(marker: str, *words: str) -> list[int]:
    """The processes of this run whose command line has all ``words``."""
    return [pid for pid in processes_with(marker)
            if all(word in command_line(pid) for word in words)]


def lines_of(output: Path, name: str) -> list[str]:
    """What process ``name`` wrote (each line is ``HH:MM:SS name | …``)."""
    return [line for line in output.read_text(errors="replace").splitlines()
            if line[9:].split("|", 1)[0].strip() == name]


def test_make_run_starts_the_platform_and_stops_cleanly(tmp_path):
    marker = f"BUENDNIS_RUN_MARKER={uuid.uuid4()}"
    ports = {name: free_port() for name in
             ("GATEWAY_PORT", "IDP_PORT", "INTAKE_PORT", "REFERRALS_PORT", "NOTIFICATIONS_PORT",
              "REDIS_PORT", "WEB_REDIS_PORT", "SMTP_PORT", "SMS_PORT", "WEB_PORT")}
    env = {key: value for key, value in os.environ.items()
           if not key.endswith(("_DATABASE_URL", "_URL")) or key == "PATH"}
    env.update({name: str(port) for name, port in ports.items()})
    # Every process's metrics port (the Procfile's defaults are 9100-9123).
    metrics_ports = {f"{name.upper().replace('-', '_')}_METRICS_PORT": free_port() for name in (
        "gateway", "intake", "referrals", "notifications", "web",
        *(f"{s}-{role}" for s in ("gateway", "intake", "referrals", "notifications")
          for role in ("worker", "beat")))}
    env.update({name: str(port) for name, port in metrics_ports.items()})
    env.update({
        "BUENDNIS_VAR": str(tmp_path / "var"),
        "INTAKE_DATABASE_URL": f"sqlite:///{tmp_path}/intake.sqlite3",
        "REFERRALS_DATABASE_URL": f"sqlite:///{tmp_path}/referrals.sqlite3",
        "NOTIFICATIONS_DATABASE_URL": f"sqlite:///{tmp_path}/notifications.sqlite3",
        "GATEWAY_DATABASE_URL": f"sqlite:///{tmp_path}/gateway.sqlite3",
        "BUENDNIS_RUN_MARKER": marker.split("=", 1)[1],
    })
    output = tmp_path / "make-run.log"
    with open(output, "wb") as log:
        make = subprocess.Popen(["make", "run"], cwd=REPO, env=env, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    try:
        try:
            wait_for(lambda: "Bündnis is running" in output.read_text(errors="replace"),
                     timeout=180, what="make run printing its banner", interval=0.5)
        except TimeoutError:
            lines = output.read_text(errors="replace").splitlines()
            pytest.fail("no banner; make run said:\n" + "\n".join(
                line for line in lines if "Sending due task" not in line)[-6000:])
        text = output.read_text(errors="replace")
        web = f"http://127.0.0.1:{ports['WEB_PORT']}"
        banner = text[text.index("Bündnis is running"):]
        # The pages come first in the banner, then the API.
        assert f"Web-Oberfläche: {web}" in banner
        assert banner.index(web) < banner.index(f"http://127.0.0.1:{ports['GATEWAY_PORT']}")
        assert "cw.jmd-leverkusen" in text and "password: demo" in text

        # The web front end answers on its port; its access log names the path, never the
        # query string (a search can carry a person's name).
        def health_lines() -> int:
            return sum('"GET /healthz"' in line for line in lines_of(output, "web"))

        logged = health_lines()  # the demo loader's own checks
        probe = f"probe-{uuid.uuid4().hex}"
        health = requests.get(f"{web}/healthz", params={"q": probe}, timeout=10)
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        wait_for(lambda: health_lines() > logged, timeout=20, interval=0.5,
                 what="the web front end's access log line")
        assert probe not in output.read_text(errors="replace")

        # A page sends the browser, through the front end's sign-in, to the identity provider:
        # the buendnis-web client, code flow with PKCE.
        idp = f"http://127.0.0.1:{ports['IDP_PORT']}"
        browser = requests.Session()
        location = f"{web}/"
        for _hop in range(4):
            response = browser.get(location, allow_redirects=False, timeout=10)
            assert response.status_code in (301, 302, 303, 307), (location, response.status_code)
            location = requests.compat.urljoin(location, response.headers["Location"])
            if location.startswith(idp):
                break
        assert location.startswith(f"{idp}/realms/buendnis/protocol/openid-connect/auth?"), location
        assert "client_id=buendnis-web" in location and "code_challenge_method=S256" in location

        token = requests.post(
            f"{idp}/realms/buendnis/protocol/openid-connect/token",
            data={"grant_type": "password", "client_id": "buendnis-cli",
                  "username": "cw.jmd-leverkusen", "password": "demo"}, timeout=10,
        ).json()["access_token"]
        gateway = f"http://127.0.0.1:{ports['GATEWAY_PORT']}"
        headers = {"Authorization": f"Bearer {token}"}
        me = requests.get(f"{gateway}/api/v1/me", headers=headers, timeout=10)
        assert me.status_code == 200
        assert me.json()["organization"] == {
            "alias": "jmd-leverkusen", "type": "jmd", "alliance": "leverkusen"}

        # make run says where the metrics are, and every process serves them on its port.
        assert "Metrics (Prometheus)" in output.read_text(errors="replace")
        figures = {}
        for name, port in metrics_ports.items():
            answer = wait_for(lambda port=port: requests.get(
                f"http://127.0.0.1:{port}/metrics", timeout=5), timeout=30, what=name)
            assert answer.status_code == 200, name
            figures[name] = answer.text
        assert 'group="/api/v1/me"' in figures["GATEWAY_METRICS_PORT"]
        assert "buendnis_outbox_pending_events" in figures["REFERRALS_WORKER_METRICS_PORT"]
        assert "buendnis_reminders_due" in figures["NOTIFICATIONS_WORKER_METRICS_PORT"]
        assert "buendnis_audit_trail_entries" in figures["GATEWAY_WORKER_METRICS_PORT"]
        participants = requests.get(f"{gateway}/api/v1/participants", headers=headers,
                                    timeout=10)
        assert len(participants.json()) == 2  # the demo data
        offers = requests.get(f"{gateway}/api/v1/offers", headers=headers, timeout=10).json()
        assert {offer["provider_org"] for offer in offers} == {
            "caritas-leverkusen", "awo-leverkusen", "jobservice-leverkusen", "ki-leverkusen"}
        assert len(processes_with(marker)) >= 16

        # A worker dies (SIGKILL, as the OOM killer would): the rest goes on, and supervisor
        # starts it again and says so.
        def readies() -> int:
            return sum("ready." in line for line in lines_of(output, "notifications-worker"))

        wait_for(readies, timeout=120, interval=0.5, what="the notifications worker ready")
        before = readies()
        (worker,) = the_process(marker, "notifications.worker", "worker")
        os.kill(worker, signal.SIGKILL)
        wait_for(lambda: [pid for pid in the_process(marker, "notifications.worker", "worker")
                          if pid != worker], timeout=60, interval=0.5,
                 what="the notifications worker started again")
        wait_for(lambda: readies() > before, timeout=120, interval=0.5,
                 what="the new worker ready")
        text = output.read_text(errors="replace")
        assert re.search(r"exited: notifications-worker .*not expected", text)
        assert "spawned: 'notifications-worker'" in text
        assert requests.get(f"{gateway}/api/v1/me", headers=headers, timeout=10).status_code == 200
    finally:
        os.killpg(make.pid, signal.SIGTERM)  # what Ctrl-C in a terminal amounts to
        try:
            make.wait(timeout=45)
        except subprocess.TimeoutExpired:
            os.killpg(make.pid, signal.SIGKILL)
            raise
    # make ends at once; supervisor goes on stopping each process (at most 25 s before it kills).
    deadline = time.monotonic() + 60
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = {pid: " ".join(command_line(pid))[:200] for pid in processes_with(marker)}
    assert not left, (left, output.read_text(errors="replace")[-3000:])
