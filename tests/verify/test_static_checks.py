"""Static checks on the real monitoring files, against what a real twin and the real exporters export.

The guide's files must be reported with EVERY series they read that the backend does not
export: the exact lists below are the drift between the monitoring guide and the backend.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from codesync_load.contract import CONTRACT_DIR
from codesync_load.twin_process import TwinProcess
from tests.verify.conftest import twin_scrape_targets
from verify.checks import REGISTRY, CheckResult
from verify.checks.base import Evidence, first_failure
from verify.context import MONITORING, VerifyContext, VerifyOptions

GUIDE = MONITORING / "guide"


def context(twin: TwinProcess, exporters: dict[str, str], **options: object) -> VerifyContext:
    opts = VerifyOptions(**options)  # type: ignore[arg-type]
    opts.scrape_targets = {**twin_scrape_targets(twin), **{job: (url, None) for job, url in exporters.items()}}
    return VerifyContext(opts)


def run(ctx: VerifyContext, name: str) -> CheckResult:
    return REGISTRY[name].run(ctx)


def test_backend_monitoring_files_pass_every_static_check(twin: TwinProcess, exporter_urls: dict[str, str]) -> None:
    ctx = context(twin, exporter_urls)
    for name in (
        "rules-series-exported",
        "rules-labels-exported",
        "rules-windows-fit-scrape",
        "alerts-severities-routed",
        "rules-promtool-tests",
        "dashboard-series-exported",
        "metrics-labels-match-contract",
    ):
        result = run(ctx, name)
        assert result.verdict == "pass", result.render()
    assert "critical, warning" in run(ctx, "alerts-severities-routed").summary


def test_guide_alerts_are_reported_with_every_series_the_backend_does_not_export(
    twin: TwinProcess, exporter_urls: dict[str, str]
) -> None:
    ctx = context(twin, exporter_urls, rules=[GUIDE / "alerts.yml"])
    result = run(ctx, "rules-series-exported")
    assert result.verdict == "fail"
    assert {row[1] for row in result.evidence.rows} == {
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "rate_limit_hits_total",
        "ws_connection_failures_total",
    }
    assert ("WebSocketConnectionFailures", "ws_connection_failures_total", "any job", "not exported by any job") in (
        result.evidence.rows
    )
    assert "4 series used by rules are not exported" in result.summary


def test_guide_dashboard_is_reported_with_every_series_the_backend_does_not_export(
    twin: TwinProcess, exporter_urls: dict[str, str]
) -> None:
    ctx = context(twin, exporter_urls, dashboard=GUIDE / "codesync.json")
    result = run(ctx, "dashboard-series-exported")
    assert result.verdict == "fail"
    assert {row[1] for row in result.evidence.rows} == {
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "ws_connections_active",
        "sessions_active",
        "rate_limit_hits_total",
    }
    assert {row[0] for row in result.evidence.rows} == {
        "Request Rate",
        "Error Rate",
        "Response Time (p95)",
        "Active WebSocket Connections",
        "Active Sessions",
        "Rate Limit Hits",
    }


def test_guide_contract_against_the_backend_names_what_is_absent(
    twin: TwinProcess, exporter_urls: dict[str, str]
) -> None:
    ctx = context(twin, exporter_urls, contract=CONTRACT_DIR / "guide.toml")
    result = run(ctx, "metrics-present")
    assert result.verdict == "fail"
    # Unlabelled families must exist from start-up; the labelled ones are only "not seen" without a run.
    assert {row[0] for row in result.evidence.rows} == {
        "ws_connections_active",
        "ws_connection_failures_total",
        "sessions_active",
    }
    assert "http_requests_total" in result.summary  # listed as not seen


def test_label_drift_fails_the_label_checks_by_name(
    twin_factory: Callable[..., TwinProcess], exporter_urls: dict[str, str]
) -> None:
    drifted = twin_factory(faults=["label-drift"])
    # A few requests create the drifted HTTP series.
    import urllib.request

    for _ in range(3):
        urllib.request.urlopen(f"{drifted.api_url}/health", timeout=5).read()
    ctx = context(drifted, exporter_urls)
    rules = run(ctx, "rules-labels-exported")
    assert rules.verdict == "fail", rules.render()
    assert {(row[1], row[2]) for row in rules.evidence.rows} == {
        ("codesync_http_requests_total", "status_code"),
    }
    labels = run(ctx, "metrics-labels-match-contract")
    assert labels.verdict == "fail"
    assert {(row[0], row[4], row[5]) for row in labels.evidence.rows} == {
        ("codesync_http_requests_total", "path,status", "route,status_code"),
        ("codesync_http_request_duration_seconds", "path,status", "route,status_code"),
    }


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_windows_shorter_than_four_scrapes_fail(tmp_path: Path) -> None:
    rules = _write(
        tmp_path / "rules.yml",
        """
groups:
  - name: g
    rules:
      - alert: TooShort
        expr: rate(codesync_http_requests_total{job="codesync-backend"}[30s]) > 1
        labels: {severity: warning}
      - alert: JustRight
        expr: rate(codesync_http_requests_total{job="codesync-backend"}[40s]) > 1
        labels: {severity: warning}
      - alert: UnscopedUsesSlowestJob
        expr: max_over_time(up[50s]) < 1
        labels: {severity: critical}
""",
    )
    ctx = VerifyContext(VerifyOptions(rules=[rules]))
    result = run(ctx, "rules-windows-fit-scrape")
    assert result.verdict == "fail"
    # codesync-backend scrapes every 10 s (window >= 40 s); unscoped `up` is read from every job,
    # the slowest the uptime probe of the database port at 120 s (window >= 480 s).
    assert result.evidence.rows == [
        ("TooShort", "[30s]", "codesync-backend", "10s", "40s"),
        (
            "UnscopedUsesSlowestJob",
            "[50s]",
            "codesync-backend,codesync-yjs,node-exporter,postgres-exporter,prometheus,redis-exporter,"
            "uptime-database,uptime-health",
            "120s",
            "480s",
        ),
    ]


def test_a_severity_without_its_own_route_fails(tmp_path: Path) -> None:
    rules = _write(
        tmp_path / "rules.yml",
        """
groups:
  - name: g
    rules:
      - {alert: Crit, expr: up == 0, labels: {severity: critical}}
      - {alert: Info, expr: up == 0, labels: {severity: info}}
      - {alert: Ghost, expr: up == 0, labels: {severity: page}}
      - {alert: NoSeverity, expr: up == 0}
""",
    )
    am = _write(
        tmp_path / "am.yml",
        """
route:
  receiver: default
  routes:
    - {receiver: pager, matchers: ['severity="critical"']}
    - {receiver: nowhere, matchers: ['severity=~"info|debug"']}
receivers:
  - {name: default, webhook_configs: [{url: "http://127.0.0.1:9/x"}]}
  - {name: pager, webhook_configs: [{url: "http://127.0.0.1:9/y"}]}
""",
    )
    result = run(VerifyContext(VerifyOptions(rules=[rules], alertmanager_config=am)), "alerts-severities-routed")
    assert result.verdict == "fail"
    assert [(row[0], row[3]) for row in result.evidence.rows] == [
        ("Info", "receiver nowhere is not defined"),
        ("Ghost", "no route matches severity=page"),
        ("NoSeverity", "the rule sets no severity label"),
    ]


@pytest.mark.parametrize("missing", ["rules", "dashboard"])
def test_a_missing_file_is_one_line(tmp_path: Path, missing: str) -> None:
    from codesync_load.errors import HarnessError

    opts = VerifyOptions(rules=[tmp_path / "nope.yml"], dashboard=tmp_path / "nope.json")
    ctx = VerifyContext(opts)
    name = "rules-windows-fit-scrape" if missing == "rules" else "dashboard-series-exported"
    with pytest.raises(HarnessError, match=r"nope\.(yml|json) does not exist; pass an existing file"):
        run(ctx, name)


def test_first_failure_reports_the_first_reason_that_applies_with_the_shared_details() -> None:
    evidence = Evidence(("what",))
    details = {"measured": "3 refused", "expected": "2 refused", "evidence": evidence}
    failed = first_failure([(False, "not this"), (["x"], "the second"), (True, "not the third")], "ok", **details)
    assert (failed.verdict, failed.summary, failed.measured, failed.expected) == (
        "fail",
        "the second",
        "3 refused",
        "2 refused",
    )
    assert failed.evidence is evidence
    passed = first_failure([(False, "no"), ([], "none"), (0, "zero")], "all fine", **details)
    assert (passed.verdict, passed.summary, passed.measured, passed.evidence) == (
        "pass",
        "all fine",
        "3 refused",
        evidence,
    )
