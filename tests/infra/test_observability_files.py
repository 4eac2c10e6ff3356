"""The operations files under infra/observability: Prometheus' own tools accept the scrape
configurations and the alerting rules, every alert fires in its promtool case (and only then),
make run's configuration lists every process of the Procfile that serves metrics, and the
dashboard shows the figures the alerts are about."""
from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml

from tests.support.platform import REPO

HERE = REPO / "infra" / "observability"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], cwd=HERE, capture_output=True, text=True,
                          timeout=120)


def test_the_rules_are_valid_and_every_alert_passes_its_promtool_case():
    checked = promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", "alerts.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    alerts = {rule["alert"] for group in yaml.safe_load((HERE / "alerts.yml").read_text())["groups"]
              for rule in group["rules"]}
    cases = {case["alertname"] for test in yaml.safe_load(
        (HERE / "alerts.test.yml").read_text())["tests"] for case in test["alert_rule_test"]}
    assert alerts == cases
    # Each case says when the alert fires, not only when it does not.
    fired = {case["alertname"] for test in yaml.safe_load(
        (HERE / "alerts.test.yml").read_text())["tests"] for case in test["alert_rule_test"]
        if case["exp_alerts"]}
    assert fired == alerts


def test_a_broken_rule_is_refused(tmp_path):
    """The check can fail: an alert whose expression does not parse."""
    broken = tmp_path / "broken.yml"
    broken.write_text("groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: up ==\n")
    assert promtool("check", "rules", str(broken)).returncode != 0


@pytest.mark.parametrize("name", ["prometheus-local.yml", "prometheus-compose.yml"])
def test_the_scrape_configurations_are_valid(name):
    checked = promtool("check", "config", name)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_make_runs_configuration_lists_every_process_that_serves_metrics():
    procfile = (REPO / "Procfile").read_text()
    ports = {}
    for line in procfile.splitlines():
        name, _, command = line.partition(": ")
        found = re.search(r"METRICS_PORT=\$\{\w+:-(\d+)\}", command)
        if found:
            ports[name] = int(found.group(1))
    assert {"gateway", "web", "intake", "intake-worker", "notifications-beat"} <= set(ports)
    config = yaml.safe_load((HERE / "prometheus-local.yml").read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"]
               for job in config["scrape_configs"]}
    assert targets == {name: [f"127.0.0.1:{port}"] for name, port in ports.items()}
    # None of them is a port the platform serves its API or pages on.
    assert not {8000, 8001, 8002, 8003, 8090} & set(ports.values())


def test_the_dashboard_shows_the_alerts_figures():
    dashboard = json.loads((HERE / "grafana-dashboard.json").read_text())
    expressions = " ".join(target["expr"] for panel in dashboard["panels"]
                           for target in panel.get("targets", []))
    for metric in ("flask_http_request_duration_seconds", "buendnis_celery_tasks_total",
                   "buendnis_outbox_pending_events", "buendnis_outbox_oldest_pending_age_seconds",
                   "buendnis_outbox_unconfirmed_events",
                   "buendnis_outbox_oldest_unconfirmed_age_seconds",
                   "buendnis_events_consumed_total", "buendnis_events_refused_total",
                   "buendnis_reminders_total", "buendnis_reminder_lateness_seconds",
                   "buendnis_reminders_due", "buendnis_referrals_marked_overdue_total",
                   "buendnis_consent_expiries_total", "buendnis_rate_limit_refusals_total",
                   "buendnis_audit_trail_entries", "buendnis_audit_chain_last_verification_ok",
                   "buendnis_queue_length", "up"):
        assert metric in expressions, metric
