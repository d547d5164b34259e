"""monitoring/prometheus.yml: accepted by promtool, with the job names other parts rely on.

    $ .venv/bin/pytest tests/monitoring/test_prometheus_config.py

promtool check config also stats credentials_file and the rule files, so the check runs on
a copy in tmp_path whose credentials_file points at a real token file there: the only change.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import requests
import yaml

from tests.monitoring._files import ALERT_NAMES, MONITORING, load_yaml, require_tool, run_tool
from tests.verify._live import launch_prometheus

TOKEN_PATH = "/etc/prometheus/metrics_token"
EXPECTED_TARGETS = {
    "codesync-backend": ["codesync-api:4000"],
    "codesync-yjs": ["codesync-yjs:4001"],
    "node-exporter": ["node-exporter:9100"],
    "postgres-exporter": ["postgres-exporter:9187"],
    "redis-exporter": ["redis-exporter:9121"],
    "prometheus": ["localhost:9090"],
    "uptime-health": ["http://codesync-api:4000/health"],
    "uptime-database": ["postgres:5432"],
}


def jobs(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {job["job_name"]: job for job in config["scrape_configs"]}


def copy_with_token(tmp_path: Path) -> Path:
    """prometheus.yml and alerts.yml in tmp_path, credentials_file rewritten to a token there."""
    config = load_yaml(MONITORING / "prometheus.yml")
    token = tmp_path / "metrics_token"
    token.write_text("test-token")
    rewritten = 0
    for job in config["scrape_configs"]:
        auth = job.get("authorization")
        if auth:
            assert auth["credentials_file"] == TOKEN_PATH
            auth["credentials_file"] = str(token)
            rewritten += 1
    assert rewritten == 2
    shutil.copy(MONITORING / "alerts.yml", tmp_path / "alerts.yml")
    target = tmp_path / "prometheus.yml"
    target.write_text(yaml.safe_dump(config, sort_keys=False))
    return target


def test_promtool_check_config_accepts_it_with_its_rule_file(tmp_path: Path) -> None:
    result = run_tool(["promtool", "check", "config", str(copy_with_token(tmp_path))])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout
    assert "SUCCESS: 10 rules found" in result.stdout


def test_promtool_check_config_really_checks_the_token_file(tmp_path: Path) -> None:
    """Without the copy, promtool fails on the missing token path: the check above is not vacuous."""
    if Path(TOKEN_PATH).exists():
        return  # a machine with a real token file there; the rewrite still ran above
    shutil.copy(MONITORING / "prometheus.yml", tmp_path / "prometheus.yml")
    shutil.copy(MONITORING / "alerts.yml", tmp_path / "alerts.yml")
    result = run_tool(["promtool", "check", "config", str(tmp_path / "prometheus.yml")])
    assert result.returncode != 0
    assert TOKEN_PATH in result.stdout + result.stderr


def test_job_names_targets_and_intervals() -> None:
    config = load_yaml(MONITORING / "prometheus.yml")
    assert config["global"]["scrape_interval"] == "15s"
    assert config["global"]["evaluation_interval"] == "15s"
    assert config["rule_files"] == ["alerts.yml"]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    by_name = jobs(config)
    assert list(by_name) == list(EXPECTED_TARGETS)
    for name, targets in EXPECTED_TARGETS.items():
        assert [t for sc in by_name[name]["static_configs"] for t in sc["targets"]] == targets, name


def test_codesync_jobs_scrape_every_10s_with_the_bearer_token() -> None:
    by_name = jobs(load_yaml(MONITORING / "prometheus.yml"))
    for name in ("codesync-backend", "codesync-yjs"):
        job = by_name[name]
        assert job["scrape_interval"] == "10s"
        assert job.get("metrics_path", "/metrics") == "/metrics"
        assert job["authorization"] == {"type": "Bearer", "credentials_file": TOKEN_PATH}
    for name in ("node-exporter", "postgres-exporter", "redis-exporter", "prometheus"):
        assert "authorization" not in by_name[name], name


def test_a_live_prometheus_loads_the_jobs_rules_and_alertmanager(tmp_path: Path) -> None:
    """Prometheus itself (not only promtool) takes the config: its API lists the eight jobs,
    the ten alerting rules and the Alertmanager."""
    require_tool("prometheus")
    config = copy_with_token(tmp_path)
    # Loopback only: each job's target becomes a closed local port (as the launcher renders it).
    rendered = load_yaml(config)
    for job in rendered["scrape_configs"]:
        job["static_configs"] = [{"targets": ["127.0.0.1:9"]}]
    config.write_text(yaml.safe_dump(rendered, sort_keys=False))
    live = launch_prometheus(tmp_path, config)
    proc, url = live.process, live.url
    try:

        def jobs_scraped() -> list[str]:
            active = requests.get(f"{url}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
            return sorted(t["labels"]["job"] for t in active)

        proc.wait_until(lambda: len(jobs_scraped()) == len(EXPECTED_TARGETS), timeout=20, what="eight scrape targets")
        assert jobs_scraped() == sorted(EXPECTED_TARGETS)
        groups = requests.get(f"{url}/api/v1/rules", params={"type": "alert"}, timeout=5).json()["data"]["groups"]
        assert {rule["name"] for group in groups for rule in group["rules"]} == ALERT_NAMES

        def alertmanagers() -> list[str]:
            data = requests.get(f"{url}/api/v1/alertmanagers", timeout=5).json()["data"]
            return [am["url"] for am in data["activeAlertmanagers"] + data["droppedAlertmanagers"]]

        proc.wait_until(lambda: alertmanagers(), timeout=15, what="Alertmanager discovery")
        assert alertmanagers() == ["http://alertmanager:9093/api/v2/alerts"]
    finally:
        proc.stop()
