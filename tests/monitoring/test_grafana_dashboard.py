"""The Grafana dashboard and its provisioning: the guide's ten panels, every query valid,
scoped by job and on series the backend or an exporter really exports.

    $ .venv/bin/pytest tests/monitoring/test_grafana_dashboard.py

Query syntax is checked by promtool: each expr becomes a recording rule in a temporary rule
file ($__rate_interval replaced by a duration, as Grafana does before sending it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from codesync_load.contract import load_contract
from codesync_load.promql import Matcher, PromQLRefs, extract
from tests.monitoring._files import (
    DASHBOARD,
    GUIDE_CONTRACT,
    GUIDE_DASHBOARD,
    MONITORING,
    PANEL_TITLES,
    exporter_job,
    family,
    load_json,
    load_yaml,
    run_tool,
)
from verify.grafana import GrafanaTimes, substitute

PROVISIONING = MONITORING / "grafana" / "provisioning"
# Grafana's variables filled in as it would before sending a query; $__rate_interval becomes
# 60s, a window no panel spells out, so a window of 60s is one that read $__rate_interval.
TIMES = GrafanaTimes(interval_s=15, scrape_s=15, range_s=600)
RATE_INTERVAL = "60s"


def refs(expr: str) -> PromQLRefs:
    """What a panel's query reads, after Grafana's substitution."""
    return extract(substitute(expr, {}, TIMES))


def targets(dashboard: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(panel["title"], target) for panel in dashboard["panels"] for target in panel["targets"]]


@pytest.mark.parametrize("path", [DASHBOARD, GUIDE_DASHBOARD], ids=["backend-names", "guide-names"])
def test_ten_timeseries_panels_with_the_guides_titles(path: Path) -> None:
    dashboard = load_json(path)
    assert dashboard["title"] == "CodeSync Monitoring Dashboard"
    assert dashboard["schemaVersion"] >= 36
    assert [panel["title"] for panel in dashboard["panels"]] == list(PANEL_TITLES)
    assert len({panel["id"] for panel in dashboard["panels"]}) == 10
    for panel in dashboard["panels"]:
        assert panel["type"] == "timeseries", panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target["refId"], panel["title"]


def test_panels_do_not_overlap() -> None:
    cells: set[tuple[int, int]] = set()
    for panel in load_json(DASHBOARD)["panels"]:
        pos = panel["gridPos"]
        mine = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not cells & mine, f"{panel['title']} overlaps another panel"
        assert pos["x"] + pos["w"] <= 24
        cells |= mine


@pytest.mark.parametrize("path", [DASHBOARD, GUIDE_DASHBOARD], ids=["backend-names", "guide-names"])
def test_every_query_is_valid_promql(path: Path, tmp_path: Path) -> None:
    rules = [
        {"record": f"dashboard:panel_{i}", "expr": target["expr"].replace("$__rate_interval", "1m")}
        for i, (_, target) in enumerate(targets(load_json(path)))
    ]
    rule_file = tmp_path / "dashboard_rules.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run_tool(["promtool", "check", "rules", str(rule_file)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_every_selector_is_scoped_by_job() -> None:
    """process_* and nodejs_* series come from every target: without a job matcher the panels
    would add the exporters' own memory and CPU to CodeSync's."""
    for title, target in targets(load_json(DASHBOARD)):
        for sel in refs(target["expr"]).selectors:
            matcher = sel.matcher("job")
            assert matcher is not None, f"{title}: {sel.name} has no job matcher"
            if sel.name.startswith(("process_", "nodejs_")):
                assert not matcher.matches("node-exporter"), f"{title}: {sel.name} includes exporters"


def test_rates_use_rate_interval() -> None:
    for title, target in targets(load_json(DASHBOARD)):
        windows = refs(target["expr"]).windows
        assert len(windows) == target["expr"].count("[$__rate_interval]"), f"{title}: {windows}"
        for window in windows:
            assert window == (RATE_INTERVAL, 60.0, "range"), f"{title}: [{window[0]}]"
        if "rate(" in target["expr"]:
            assert "[$__rate_interval]" in target["expr"], title


def test_series_exist_in_the_backend_contract_or_an_exporter() -> None:
    contract = load_contract()
    for title, target in targets(load_json(DASHBOARD)):
        for sel in refs(target["expr"]).selectors:
            spec = family(sel.name, contract)
            if spec is not None:
                allowed = {"job", "instance", *spec.labels}
                assert sel.label_names <= allowed, f"{title}: {sel.name} matches {sel.label_names}"
            else:
                job = exporter_job(sel.name)
                assert job is not None, f"{title}: {sel.name} is neither in backend.toml nor an exporter's"
                assert sel.matcher("job") == Matcher("job", "=", job), f"{title}: {sel.name} not scoped to {job}"


def test_database_and_redis_panels_read_the_guides_exporter_series() -> None:
    panels = {panel["title"]: panel for panel in load_json(DASHBOARD)["panels"]}
    names = {
        title: {sel.name for target in panels[title]["targets"] for sel in refs(target["expr"]).selectors}
        for title in ("Database Queries", "Redis Operations")
    }
    assert "pg_stat_database_xact_commit" in names["Database Queries"]
    assert names["Redis Operations"] == {"redis_commands_processed_total"}


def test_guide_dashboard_references_exactly_the_names_the_backend_lacks() -> None:
    backend = load_contract()
    guide = load_contract(GUIDE_CONTRACT)
    missing = set()
    for _, target in targets(load_json(GUIDE_DASHBOARD)):
        for sel in refs(target["expr"]).selectors:
            if family(sel.name, backend) is None and exporter_job(sel.name) is None:
                missing.add(sel.name)
                assert family(sel.name, guide) is not None, f"{sel.name} is not in guide.toml"
    assert missing == {
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "ws_connections_active",
        "sessions_active",
        "rate_limit_hits_total",
    }


def test_provisioning_points_grafana_at_prometheus_and_the_dashboard_directory() -> None:
    datasources = load_yaml(PROVISIONING / "datasources" / "prometheus.yml")["datasources"]
    assert [(d["uid"], d["type"], d["url"]) for d in datasources] == [
        ("prometheus", "prometheus", "http://prometheus:9090")
    ]
    providers = load_yaml(PROVISIONING / "dashboards" / "codesync.yml")["providers"]
    assert [(p["type"], p["options"]["path"]) for p in providers] == [("file", "/var/lib/grafana/dashboards")]
