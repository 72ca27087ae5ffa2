"""The shipped monitoring files, checked with the real Prometheus tools: promtool (config, rules, rule unit tests)
and amtool; the Grafana dashboards' PromQL validated by promtool and limited to metrics PR-System exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client import CollectorRegistry

from backend.clock import SystemClock
from backend.notify.delivery import NotifyMetrics
from backend.observability.db_gauges import DatabaseGauges
from backend.observability.metrics import Metrics
from llm_node.metrics import NodeMetrics

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
RULES = DEPLOY / "prometheus" / "rules"
RULE_TESTS = DEPLOY / "prometheus" / "tests"
DASHBOARDS = DEPLOY / "grafana" / "dashboards"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
AMTOOL = shutil.which("amtool") or "/usr/bin/amtool"
# Metrics of the exporters the shipped Prometheus scrapes beside PR-System (and Prometheus' own `up`).
OTHER_EXPORTERS = {
    "up",
    "pg_up",
    "pg_replication_lag_seconds",
    "nginx_up",
    "probe_ssl_earliest_cert_expiry",
    # exported by the backups package (issue 13)
    "prs_backup_last_success_timestamp_seconds",
    "prs_backup_failures_total",
    "prs_backup_last_verify_success",
}
# Grafana's interval variables, replaced by sample values so promtool can parse the expressions.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "6h"}
PROMQL_WORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
}


def run_tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=REPO, check=False)


def exported_metric_names() -> set[str]:
    """Every sample name PR-System's processes can export, from their real registries."""
    names: set[str] = set()
    registries = [Metrics().registry, NodeMetrics().registry]
    notify = CollectorRegistry()
    NotifyMetrics(notify)
    registries.append(notify)
    gauges = CollectorRegistry()
    gauges.register(DatabaseGauges(pool=None, clock=SystemClock(), cache_s=1, timeout_s=1))  # type: ignore[arg-type]
    registries.append(gauges)
    for registry in registries:
        for family in registry.collect():
            suffixes = {
                "counter": ["_total"],
                "histogram": ["_bucket", "_sum", "_count"],
                "summary": ["_sum", "_count", ""],
            }.get(family.type, [""])
            names.update(family.name + suffix for suffix in suffixes)
    names.update({"prs_db_pool_connections", "prs_db_pool_in_use", "prs_db_pool_max"})
    return names


def metric_names_in(expr: str) -> set[str]:
    """Metric names an expression reads (label matchers, ranges, strings and grouping clauses stripped)."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', "", expr)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    found = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        following = text[match.end() :].lstrip()[:1]
        word = match.group(0)
        if following != "(" and word.lower() not in PROMQL_WORDS:
            found.add(word)
    return found


def alert_rules() -> list[dict]:
    rules = []
    for path in sorted(RULES.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules += [r for r in group["rules"] if "alert" in r]
    return rules


def test_shipped_prometheus_config_and_rules_are_valid():
    config = run_tool(PROMTOOL, "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))
    assert config.returncode == 0, config.stdout + config.stderr
    assert "SUCCESS" in config.stdout + config.stderr


def test_promtool_rule_unit_tests_pass():
    files = sorted(str(p) for p in RULE_TESTS.glob("*.yml"))
    assert files
    result = run_tool(PROMTOOL, "test", "rules", *files)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (result.stdout + result.stderr).count("SUCCESS") == len(files)


def test_shipped_alertmanager_config_is_valid_and_routes_to_pr_system():
    result = run_tool(AMTOOL, "check-config", str(DEPLOY / "alertmanager" / "alertmanager.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    hooks = [h for r in config["receivers"] for h in r.get("webhook_configs", [])]
    assert any(
        h["url"].endswith("/api/v1/external/alerts/alertmanager")
        and h["send_resolved"]
        and h["http_config"]["authorization"]["type"] == "Bearer"
        for h in hooks
    )


def test_every_alert_has_severity_summary_runbook_and_tests_firing_and_silent():
    rules = alert_rules()
    tested: dict[str, set[str]] = {}
    for path in RULE_TESTS.glob("*.yml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                tested.setdefault(check["alertname"], set()).add("firing" if check.get("exp_alerts") else "silent")
    runbooks = (REPO / "docs" / "runbooks.md").read_text()
    anchors = {m.group(1).lower() for m in re.finditer(r'<a id="([^"]+)"></a>', runbooks)}
    for rule in rules:
        name = rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        assert rule["annotations"]["summary"], name
        assert rule["annotations"]["runbook_url"].split("#")[1] in anchors, name
        assert tested.get(name) == {"firing", "silent"}, f"{name} needs a firing and a silent promtool test"
    assert len(rules) >= 20


@pytest.mark.parametrize("path", sorted(DASHBOARDS.glob("*.json")), ids=lambda p: p.stem)
def test_dashboard_is_a_valid_model_whose_queries_parse_and_name_exported_metrics(path, tmp_path):
    model = json.loads(path.read_text())
    assert model["uid"] and model["title"] and model["panels"]
    variables = {v["name"]: v for v in model["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    exprs = []
    for panel in model["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            exprs.append(expr)
    # Each query wrapped in a recording rule: promtool parses and checks them all.
    rules = {
        "groups": [
            {"name": path.stem, "rules": [{"record": f"dashboard:query_{i}", "expr": e} for i, e in enumerate(exprs)]}
        ]
    }
    rule_file = tmp_path / "dashboard-queries.yml"
    rule_file.write_text(yaml.safe_dump(rules))
    checked = run_tool(PROMTOOL, "check", "rules", str(rule_file))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    known = exported_metric_names() | OTHER_EXPORTERS | {"process_resident_memory_bytes", "process_cpu_seconds_total"}
    unknown = {name for e in exprs for name in metric_names_in(e)} - known
    assert not unknown, f"{path.name} reads metrics nothing exports: {sorted(unknown)}"


def test_alert_rules_read_only_exported_metrics():
    known = exported_metric_names() | OTHER_EXPORTERS
    unknown = {name for r in alert_rules() for name in metric_names_in(r["expr"])} - known
    assert not unknown, sorted(unknown)


def test_metric_name_extraction_ignores_labels_groupings_and_functions():
    expr = 'histogram_quantile(0.95, sum by (le, route) (rate(prs_x_bucket{route!~"/a|b"}[5m]))) / on () max(up)'
    assert metric_names_in(expr) == {"prs_x_bucket", "up"}


def test_shipped_nginx_serves_stub_status_to_the_local_exporter_and_redirects_the_rest(tmp_path):
    from tests.fixtures.notify_receivers import make_pki
    from tests.fixtures.processes import free_port, wait_until_serving
    from tests.integration.test_nginx_proxy import NGINX, nginx_config_for_test

    http_port, https_port = free_port(), free_port()
    config = nginx_config_for_test(
        tmp_path,
        http_port=http_port,
        https_port=https_port,
        replicas=[free_port(), free_port()],
        pki=make_pki(tmp_path),
    )
    with (tmp_path / "nginx.out").open("wb") as log:
        nginx = subprocess.Popen(
            [NGINX, "-p", str(tmp_path), "-c", str(config), "-g", "daemon off;"], stdout=log, stderr=subprocess.STDOUT
        )
    try:
        status_url = f"http://127.0.0.1:{http_port}/nginx_status"
        assert wait_until_serving(status_url, nginx, timeout=30), (tmp_path / "nginx.out").read_text()
        status = httpx.get(status_url, timeout=5)
        other = httpx.get(f"http://127.0.0.1:{http_port}/metrics", timeout=5)
    finally:
        nginx.terminate()
        nginx.wait(timeout=30)
    assert status.text.startswith("Active connections:")
    assert other.status_code == 301 and other.headers["location"].startswith("https://")
