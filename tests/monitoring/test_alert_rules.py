"""The alert rules: valid for promtool, unit-tested for every alert, scoped by job, and
written against the names the backend really exports (the guide's copy against the guide's).

    $ .venv/bin/pytest tests/monitoring/test_alert_rules.py
"""

from __future__ import annotations

from pathlib import Path

import pytest

from codesync_load.contract import load_contract
from codesync_load.promql import Matcher, extract, parse_duration_s
from tests.monitoring._files import (
    ALERT_NAMES,
    GUIDE,
    GUIDE_CONTRACT,
    MONITORING,
    alert_rules,
    exporter_job,
    family,
    load_yaml,
    run_tool,
)

ALERTS = MONITORING / "alerts.yml"
TESTS = MONITORING / "tests" / "alerts_test.yml"
CRITICAL = {"ServiceDown", "PostgreSQLDown", "RedisDown"}
PROCESS_JOBS = {"api": "codesync-backend", "yjs": "codesync-yjs"}


def scrape_intervals() -> list[float]:
    """Every scrape interval of prometheus.yml, the global one included."""
    config = load_yaml(MONITORING / "prometheus.yml")
    default = config["global"]["scrape_interval"]
    return [parse_duration_s(job.get("scrape_interval", default)) for job in config["scrape_configs"]] + [
        parse_duration_s(default)
    ]


@pytest.mark.parametrize("path", [ALERTS, GUIDE / "alerts.yml"], ids=["backend-names", "guide-names"])
def test_promtool_check_rules_accepts_both_rule_files(path: Path) -> None:
    result = run_tool(["promtool", "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 10 rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    result = run_tool(["promtool", "test", "rules", str(TESTS)], cwd=MONITORING)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_fail_when_a_threshold_moves(tmp_path: Path) -> None:
    """The unit tests can fail: a HighErrorRate threshold of 4 % breaks its 'silent at 4.9 %' case."""
    (tmp_path / "tests").mkdir()
    text = ALERTS.read_text()
    assert text.count("> 0.05") == 1
    (tmp_path / "alerts.yml").write_text(text.replace("> 0.05", "> 0.04"))
    (tmp_path / "tests" / "alerts_test.yml").write_text(TESTS.read_text())
    result = run_tool(["promtool", "test", "rules", str(tmp_path / "tests" / "alerts_test.yml")])
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "alertname: HighErrorRate" in output
    assert "alertname: HighResponseTime" not in output


def test_the_ten_alerts_of_the_guide_with_their_severity_and_for() -> None:
    rules = {rule["alert"]: rule for rule in alert_rules(ALERTS)}
    assert set(rules) == ALERT_NAMES
    for name, rule in rules.items():
        critical = name in CRITICAL
        assert rule["labels"]["severity"] == ("critical" if critical else "warning"), name
        assert rule["for"] == ("2m" if critical else "5m"), name
        assert rule["annotations"]["summary"].strip(), name
        assert rule["annotations"]["description"].strip(), name


def test_every_alert_is_unit_tested_firing_pending_resolving_and_silent() -> None:
    """Per alert: a group where it is pending before `for`, fires after, and resolves; and a
    group where it never fires (the 'just below the threshold' case)."""
    for_s = {rule["alert"]: parse_duration_s(rule["for"]) for rule in alert_rules(ALERTS)}
    groups = load_yaml(TESTS)["tests"]
    for alert in ALERT_NAMES:
        firing_groups, silent_groups = 0, 0
        for group in groups:
            cases = [
                (parse_duration_s(c["eval_time"]), c["exp_alerts"])
                for c in group["alert_rule_test"]
                if c["alertname"] == alert
            ]
            if not cases:
                continue
            fired = [t for t, exp in cases if exp]
            if not fired:
                silent_groups += 1
                assert max(t for t, _ in cases) >= 2 * for_s[alert], f"{group['name']}: silent case ends too early"
                continue
            firing_groups += 1
            first = min(fired)
            assert first >= for_s[alert], f"{group['name']}: fires before its `for` of {for_s[alert]} s"
            assert any(t < first and not exp for t, exp in cases), f"{group['name']}: no pending (empty) case"
            assert any(t > max(fired) and not exp for t, exp in cases), f"{group['name']}: no resolved case"
            for _, exp in cases:
                for alert_exp in exp:
                    assert alert_exp["exp_labels"]["severity"] in {"critical", "warning", "info"}
                    assert set(alert_exp["exp_annotations"]) == {"summary", "description"}
        assert firing_groups >= 1, f"{alert} has no firing test"
        assert silent_groups >= 1, f"{alert} has no silent (below-threshold) test"


def test_every_selector_names_a_configured_job() -> None:
    """Unscoped selectors would mix exporters' process metrics and both CodeSync processes."""
    jobs = {job["job_name"] for job in load_yaml(MONITORING / "prometheus.yml")["scrape_configs"]}
    for rule in alert_rules(ALERTS):
        for sel in extract(rule["expr"]).selectors:
            matcher = sel.matcher("job")
            assert matcher is not None, f"{rule['alert']}: {sel.name} has no job matcher"
            assert any(matcher.matches(job) for job in jobs), f"{rule['alert']}: job matches no scrape job"


def job_intervals() -> dict[str, float]:
    """Each job's scrape interval (the global one where it sets none)."""
    config = load_yaml(MONITORING / "prometheus.yml")
    default = config["global"]["scrape_interval"]
    return {job["job_name"]: parse_duration_s(job.get("scrape_interval", default)) for job in config["scrape_configs"]}


def test_every_range_spans_at_least_four_scrape_intervals() -> None:
    # the slowest job each rule reads (every job for a selector without a job matcher): the
    # uptime probe's 120 s job is read by no rule
    intervals = job_intervals()
    for rule in alert_rules(ALERTS):
        refs = extract(rule["expr"])
        read = set()
        for sel in refs.selectors:
            matcher = sel.matcher("job")
            read |= {job for job in intervals if matcher is None or matcher.matches(job)}
        slowest = max([intervals[job] for job in read] or scrape_intervals())
        assert not read & {"uptime-health", "uptime-database"}, rule["alert"]
        for window, seconds, _ in refs.windows:
            assert seconds >= 4 * slowest, f"{rule['alert']}: [{window}] < 4 x {slowest} s"


def test_rules_read_only_series_the_backend_or_an_exporter_exports() -> None:
    """Each codesync_/process_ series is in backend.toml with the labels matched on; each
    exporter series is scoped to that exporter's job."""
    contract = load_contract()
    jobs = {job["job_name"] for job in load_yaml(MONITORING / "prometheus.yml")["scrape_configs"]}
    for rule in alert_rules(ALERTS):
        for sel in extract(rule["expr"]).selectors:
            spec = family(sel.name, contract)
            job_matcher = sel.matcher("job")
            if spec is not None:
                allowed = {"job", "instance", *spec.labels, *(["le"] if spec.type == "histogram" else [])}
                assert sel.label_names <= allowed, f"{rule['alert']}: {sel.name} matches labels {sel.label_names}"
                accepted = {job for job in jobs if job_matcher is not None and job_matcher.matches(job)}
                exporting = {job for process, job in PROCESS_JOBS.items() if spec.exported_by(process)}
                assert accepted and accepted <= exporting, f"{rule['alert']}: {sel.name} read from jobs {accepted}"
            elif sel.name == "up":
                continue
            else:
                job = exporter_job(sel.name)
                assert job is not None, f"{rule['alert']}: {sel.name} is neither in backend.toml nor an exporter's"
                assert job_matcher == Matcher("job", "=", job), f"{rule['alert']}: {sel.name} not scoped to {job}"


def test_guide_rules_reference_exactly_the_names_the_backend_lacks() -> None:
    """The guide's copy is the drift specimen: these are the series the verifier must report."""
    backend, guide = load_contract(), load_contract(GUIDE_CONTRACT)
    missing: set[str] = set()
    for rule in alert_rules(GUIDE / "alerts.yml"):
        for sel in extract(rule["expr"]).selectors:
            if family(sel.name, backend) is None and exporter_job(sel.name) is None and sel.name != "up":
                missing.add(sel.name)
                assert family(sel.name, guide) is not None, f"{sel.name} is not in guide.toml"
    assert missing == {
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "rate_limit_hits_total",
        "ws_connection_failures_total",
    }
    assert {rule["alert"] for rule in alert_rules(GUIDE / "alerts.yml")} == ALERT_NAMES
