"""The whole alerting path on real servers: Prometheus (Debian's binary) scrapes `prs serve` and an LLM node with the
shipped rules, Alertmanager delivers to PR-System, the alert becomes an incident and its resolution is recorded.

Only durations change for the test: scrape and evaluation every second and every `for:` cut to a few seconds (the
rules are otherwise the shipped ones); Alertmanager's configuration is the shipped one with short group timers and
this test's address and key.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from backend.apikeys.schemas import ApiKeyCreate
from backend.context import system_context
from tests.fixtures.processes import free_port, wait_until_serving
from tests.fixtures.server import Server

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
ALERTMANAGER = (
    shutil.which("prometheus-alertmanager") or shutil.which("alertmanager") or "/usr/bin/prometheus-alertmanager"
)
TEST_FOR = "3s"
ALERT = "PRSLLMAllNodesDown"


def rules_with_short_durations(target: Path) -> None:
    """The shipped rules with every `for:` cut to TEST_FOR."""
    shipped = yaml.safe_load((REPO / "deploy/prometheus/rules/prs-alerts.yml").read_text())
    for group in shipped["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = TEST_FOR
    target.write_text(yaml.safe_dump(shipped, sort_keys=False))


def alertmanager_config(target: Path, *, pr_system_url: str, key_file: Path) -> None:
    """The shipped Alertmanager configuration, delivering to this test's PR-System with short timers."""
    config = yaml.safe_load((REPO / "deploy/alertmanager/alertmanager.yml").read_text())
    config["route"].update(group_wait="1s", group_interval="1s", repeat_interval="1h")
    config["route"]["routes"] = [r for r in config["route"]["routes"] if r["receiver"] == "pr-system"]
    config["receivers"] = [r for r in config["receivers"] if r["name"] == "pr-system"]
    hook = config["receivers"][0]["webhook_configs"][0]
    hook["url"] = f"{pr_system_url}/api/v1/external/alerts/alertmanager"
    hook["http_config"]["authorization"]["credentials_file"] = str(key_file)
    target.write_text(yaml.safe_dump(config, sort_keys=False))


def prometheus_config(target: Path, *, rules: Path, api: str, node: str, alertmanager: str) -> None:
    """Scrape the API and the LLM node every second; alerts to the test's Alertmanager."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": [str(rules)],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "scrape_configs": [
            {"job_name": "prs-api", "static_configs": [{"targets": [api]}]},
            {"job_name": "prs-llm", "static_configs": [{"targets": [node]}]},
        ],
    }
    target.write_text(yaml.safe_dump(config, sort_keys=False))


class Daemon:
    """A server binary started by the test, its output in a log file."""

    def __init__(self, command: list[str], log: Path):
        self.log = log
        with log.open("wb") as handle:
            self.process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, cwd=log.parent)

    def ready(self, url: str) -> None:
        if not wait_until_serving(url, self.process, timeout=60):
            self.stop()
            raise AssertionError(f"{self.log.name} did not start:\n" + self.log.read_text()[-3000:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()


async def alert_incident(services: Any) -> dict[str, Any] | None:
    async with services.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM alert_incidents WHERE alertname = $1", ALERT)
    return dict(row) if row else None


async def wait_until(predicate, *, timeout: float, what: str, logs: list[Path]):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await predicate()
        if found:
            return found
        if asyncio.get_running_loop().time() > deadline:
            tails = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-1500:]}" for p in logs if p.exists())
            raise AssertionError(f"{what} did not happen in {timeout}s\n{tails}")
        await asyncio.sleep(0.5)


async def test_llm_node_down_becomes_an_incident_and_its_recovery_is_recorded(
    services, clean_state, app_settings, llm_node_factory, tmp_path
):
    key = await services.api_keys.create(
        system_context("test"),
        ApiKeyCreate(
            name="alertmanager", owner_email="ops@example.com", permissions=["write"], rate_limit_per_minute=1000
        ),
    )
    key_file = tmp_path / "pr-system-api-key"
    key_file.write_text(key["key"])
    node = llm_node_factory.start()
    env = {
        **os.environ,
        "PRS_DATABASE_URL": app_settings.database_url,
        "PRS_DATA_DIR": str(tmp_path / "data"),
        "PRS_LLM_NODES": node.url,
        "PRS_EMBEDDED_WORKER": "false",
        "PRS_LLM_HEALTH_INTERVAL_S": "1",
        "PRS_METRICS_CACHE_S": "1",
        "PRS_LLM_CONNECT_TIMEOUT_S": "1",
        "PRS_LOG_JSON": "true",
    }
    server = Server(env, tmp_path / "prs-serve.log")
    am_port, prom_port = free_port(), free_port()
    rules = tmp_path / "rules.yml"
    rules_with_short_durations(rules)
    alertmanager_config(
        tmp_path / "alertmanager.yml", pr_system_url=f"http://127.0.0.1:{server.port}", key_file=key_file
    )
    prometheus_config(
        tmp_path / "prometheus.yml",
        rules=rules,
        api=f"127.0.0.1:{server.port}",
        node=f"127.0.0.1:{node.port}",
        alertmanager=f"127.0.0.1:{am_port}",
    )
    logs = [tmp_path / "prometheus.log", tmp_path / "alertmanager.log", server.log]
    daemons: list[Daemon] = []
    server.start()
    try:
        alertmanager = Daemon(
            [
                ALERTMANAGER,
                f"--config.file={tmp_path / 'alertmanager.yml'}",
                f"--storage.path={tmp_path / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",
            ],
            tmp_path / "alertmanager.log",
        )
        daemons.append(alertmanager)
        alertmanager.ready(f"http://127.0.0.1:{am_port}/-/ready")
        prometheus = Daemon(
            [
                PROMETHEUS,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'prom-data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                "--rules.alert.resend-delay=1s",
            ],
            tmp_path / "prometheus.log",
        )
        daemons.append(prometheus)
        prometheus.ready(f"http://127.0.0.1:{prom_port}/-/ready")

        node.stop()
        linked = await wait_until(lambda: alert_incident(services), timeout=60, what="incident of the alert", logs=logs)
        incident = await services.incidents.get(linked["incident_id"])
        assert incident["title"] == f"{ALERT}: No LLM node answers"
        assert incident["priority"] == "critical" and incident["status"] == "open"
        assert linked["labels"]["alertname"] == ALERT and linked["labels"]["severity"] == "critical"
        assert linked["annotations"]["runbook_url"] == "docs/runbooks.md#prsllmallnodesdown"
        assert "- severity=critical" in incident["description"]

        node.start()

        async def resolution_recorded() -> list[dict[str, Any]]:
            comments = await services.incidents.comments(linked["incident_id"])
            return [c for c in comments if c["body"].startswith("Alertmanager: resolved ")]

        recorded = await wait_until(resolution_recorded, timeout=60, what="resolution of the alert", logs=logs)
        assert len(recorded) == 1
        assert (await alert_incident(services))["ends_at"] is not None
        async with services.pool.acquire() as conn:
            alert_incidents = await conn.fetchval("SELECT count(*) FROM alert_incidents WHERE alertname = $1", ALERT)
        assert alert_incidents == 1  # repeated notifications while it fired added nothing
    finally:
        for daemon in reversed(daemons):
            daemon.stop()
        server.stop()
        node.stop()
