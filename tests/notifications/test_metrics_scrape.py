"""Operations' view: Debian's Prometheus scrapes the running platform (every process on its own
metrics port) while a story runs — a referral, an appointment, its reminders sent — and its HTTP
API shows the figures: requests counted by route template, events consumed, a reminder's
lateness observed, the outbox back to empty, the audit chain verified. The public entry points
never serve the figures, and no label carries an id or a name."""
from __future__ import annotations

import re
import shutil
import subprocess
import time
from datetime import timedelta

import pytest
import requests

from tests.notifications.conftest import Users, book, now, wait_reminders
from tests.support.platform import PATIENCE, free_port, wait_for

pytestmark = pytest.mark.platform

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture(scope="module")
def prometheus(reminders, tmp_path_factory):
    """Prometheus on loopback, scraping every metrics port of the running platform each second
    (the targets as infra/observability/prometheus-local.yml lists them for make run)."""
    platform = reminders.platform
    for name in ("gateway-worker", "gateway-beat"):  # the audit trail's consumer and checks
        if name not in platform.processes:
            platform.start(name)
    platform.wait_log("gateway-worker", "ready.")
    workdir = tmp_path_factory.mktemp("prometheus")
    running = [name for name in platform.metrics_ports if name in platform.processes]
    jobs = "".join(
        f"  - job_name: {name}\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{platform.metrics_ports[name]}']\n"
        for name in running)
    config = workdir / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                      f"scrape_configs:\n{jobs}")
    port = free_port()
    log = open(workdir / "prometheus.log", "ab")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: requests.get(f"{url}/-/ready", timeout=1).status_code == 200,
                 timeout=30, what="Prometheus ready")
        yield url, running
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


def query(url: str, expression: str) -> list[dict]:
    answer = requests.get(f"{url}/api/v1/query", params={"query": expression}, timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]["result"]


def value(url: str, expression: str) -> float | None:
    result = query(url, expression)
    return float(result[0]["value"][1]) if result else None


def test_prometheus_sees_the_story(reminders, prometheus):
    url, running = prometheus
    platform = reminders.platform
    users = Users(platform)
    wait_for(lambda: value(url, "count(up == 1)") == len(running), timeout=60,
             what="every process scraped and up", interval=1)
    # The platform is the reminder stories' (shared by the files of this pytest worker): the
    # figures are what this story adds to them, read before it and after.
    created = ('flask_http_request_duration_seconds_count{job="%s", method="POST", '
               'group="/api/v1/referrals", status="201"}')
    consumed = ('sum(buendnis_events_consumed_total{service="notifications",'
                'type="referral.requested"})')
    # buendnis.events: the relay sends events in batches (buendnis.event: one, as before)
    tasks = 'sum(buendnis_celery_tasks_total{task=~"buendnis[.]events?",outcome="success"})'
    lateness, late_sum = ("sum(buendnis_reminder_lateness_seconds_count)",
                          "sum(buendnis_reminder_lateness_seconds_sum)")
    sent = 'sum(buendnis_reminders_total{outcome="sent"})'
    figures = (created % "gateway", created % "referrals", consumed, tasks, lateness, late_sum,
               sent)
    time.sleep(2)  # two scrapes after the last story of the platform
    before = {expression: value(url, expression) or 0 for expression in figures}

    def grown(expression: str, by: float = 1) -> bool:
        return (value(url, expression) or 0) - before[expression] >= by

    start = now() + timedelta(seconds=25 * PATIENCE)  # room for the booking, crowded too
    booking = book(users, start=start)
    jmd = users["cw.jmd-leverkusen"]
    wait_reminders(jmd, booking.appointment_id, count=4, status="sent", timeout=60)

    # Requests by route template, method and status, at the gateway and at the service.
    for job in ("gateway", "referrals"):
        wait_for(lambda job=job: grown(created % job), timeout=30,
                 what=f"{job}'s POST /api/v1/referrals counted", interval=1)
    # Events consumed, tasks run.
    wait_for(lambda: grown(consumed), timeout=30,
             what="referral.requested consumed by notifications", interval=1)
    wait_for(lambda: grown(tasks), timeout=30, what="event tasks counted", interval=1)
    # Each reminder's lateness observed, and they were sent.
    wait_for(lambda: grown(lateness, 2), timeout=60, what="the reminders' lateness observed",
             interval=1)
    assert grown(sent, 2)
    observed = value(url, lateness) - before[lateness]
    assert value(url, late_sum) - before[late_sum] < observed * 30
    # The outbox is empty again, in every service, each event confirmed by its subscribers;
    # nothing due waits.
    wait_for(lambda: value(url, "sum(buendnis_outbox_pending_events)") == 0
             and value(url, "max(buendnis_outbox_oldest_pending_age_seconds)") == 0
             and value(url, "sum(buendnis_outbox_unconfirmed_events)") == 0,
             timeout=30, what="every outbox empty and confirmed", interval=1)
    outboxes = {r["metric"]["service"] for r in query(url, "buendnis_outbox_pending_events")}
    assert outboxes == {"intake", "referrals", "notifications", "gateway"}
    assert value(url, "max(buendnis_reminders_oldest_due_age_seconds)") is not None
    # The audit trail grows with the story and its chain verifies.
    assert value(url, "max(buendnis_audit_trail_entries)") >= 1
    wait_for(lambda: value(url, "max(buendnis_audit_chain_last_verification_ok)") == 1,
             timeout=30, what="the audit chain verified", interval=1)
    assert value(url, "max(buendnis_queue_length)") is not None

    # No label anywhere carries an id (or anything but templates and codes).
    series = requests.get(f"{url}/api/v1/series", params={"match[]": '{__name__=~"buendnis_.*|'
                          'flask_.*"}'}, timeout=10).json()["data"]
    labels = {value for item in series for key, value in item.items() if key != "__name__"}
    assert not [label for label in labels if UUID.search(label)], labels
    assert booking.participant["family_name"] not in " ".join(labels)


def test_the_public_entry_points_do_not_serve_metrics(reminders, prometheus):
    platform = reminders.platform
    for base in (platform.gateway_url, *platform.service_urls.values()):
        answer = requests.get(f"{base}/metrics", timeout=5)
        assert answer.status_code in (401, 404), (base, answer.status_code)
        assert "flask_http_request" not in answer.text
    # They are on the metrics ports, and only there.
    figures = requests.get(f"http://127.0.0.1:{platform.metrics_ports['gateway']}/metrics",
                           timeout=5)
    assert figures.status_code == 200 and "flask_http_request_duration_seconds" in figures.text
