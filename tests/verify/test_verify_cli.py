"""`codesync-load verify` on bad input: one line naming cause and fix, exit 2, never a traceback.
And the pieces the command is made of (verdict table, JUnit XML, expectations, windows) on
real files."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from codesync_load.errors import HarnessError
from codesync_load.ledger import Ledger
from codesync_load.stack.ports import free_port
from tests.stack._support import run_cli
from verify.checks import REGISTRY, CheckResult, Evidence
from verify.expectations import load_expectations, predict_counter, predict_gauge
from verify.report import exit_code, render_table, write_junit
from verify.windows import LoadWindow


def cli(*args: str) -> subprocess.CompletedProcess:
    """`codesync-load verify ARGS` as a child process (tests/stack/_support.run_cli)."""
    return run_cli("verify", *args, timeout=60)


def one_line_error(done: subprocess.CompletedProcess, *fragments: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def small_run(tmp_path: Path, **meta: object) -> Path:
    run_dir = tmp_path / "run"
    ledger = Ledger(meta=dict(meta))
    ledger.phase_start("steady", at=1000.0)
    ledger.count("http", "GET", "/health", 200, n=3)
    ledger.phase_end(at=1010.0)
    ledger.write(run_dir / "ledger.json", complete=True)
    return run_dir


def test_missing_run_dir(tmp_path: Path) -> None:
    one_line_error(cli(str(tmp_path / "nope")), "does not exist", "codesync-load run")


def test_run_dir_without_ledger(tmp_path: Path) -> None:
    one_line_error(cli(str(tmp_path)), "holds no ledger.json")


def test_unreachable_prometheus(tmp_path: Path) -> None:
    run_dir = small_run(tmp_path)
    port = free_port()
    one_line_error(
        cli(str(run_dir), "--prometheus-url", f"http://127.0.0.1:{port}", "--check", "counters-*"),
        f"Prometheus at http://127.0.0.1:{port} is unreachable",
        "--prometheus-url",
    )


def test_external_backend_needs_a_url(tmp_path: Path) -> None:
    one_line_error(cli(str(small_run(tmp_path)), "--backend", "external"), "--backend external needs --prometheus-url")


def test_missing_rules_file(tmp_path: Path) -> None:
    run_dir = small_run(tmp_path)
    done = cli(
        str(run_dir),
        "--prometheus-url",
        "http://127.0.0.1:1",
        "--rules",
        str(tmp_path / "x.yml"),
        "--check",
        "rules-windows-fit-scrape",
    )
    one_line_error(done, "x.yml does not exist", "--rules")


def test_malformed_scrape_option(tmp_path: Path) -> None:
    done = cli(str(small_run(tmp_path)), "--prometheus-url", "http://127.0.0.1:1", "--scrape", "codesync-backend")
    one_line_error(done, "is not JOB=URL")


def test_unknown_check_name(tmp_path: Path) -> None:
    done = cli(str(small_run(tmp_path)), "--prometheus-url", "http://127.0.0.1:1", "--check", "no-such-check")
    one_line_error(done, "no check matches")


def test_static_checks_run_from_the_command_without_touching_prometheus(tmp_path: Path) -> None:
    """Static checks that need no series pass on the project's files; exit 0; JUnit written."""
    run_dir = small_run(tmp_path)
    done = cli(
        str(run_dir),
        "--prometheus-url",
        "http://127.0.0.1:1",
        "--check",
        "rules-windows-fit-scrape",
        "--check",
        "alerts-severities-routed",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[2].startswith("rules-windows-fit-scrape")
    root = ET.parse(run_dir / "verify" / "junit.xml").getroot()
    assert (root.get("tests"), root.get("failures")) == ("2", "0")


def test_verdict_table_junit_and_exit_codes(tmp_path: Path) -> None:
    ev = Evidence(("metric", "expected", "observed"))
    ev.add("codesync_http_requests_total", 37, 0)
    results = [
        CheckResult.passed("fine", name="rules-windows-fit-scrape"),
        CheckResult.failed("1 counter series disagree", name="counters-match-ledger", evidence=ev),
        CheckResult.skipped("no run directory", name="gauges-reach-plateau"),
    ]
    assert exit_code(results) == 1
    assert exit_code([results[0], results[2]]) == 0
    assert exit_code([CheckResult("error", "boom", name="x")]) == 2
    table = render_table(results)
    assert "counters-match-ledger     FAIL     1 counter series disagree" in table
    assert "1 pass, 1 fail, 1 not judged" in table.splitlines()
    assert table.splitlines()[-1] == "  gauges-reach-plateau: not judged: no run directory"
    root = ET.parse(write_junit(results, tmp_path / "j.xml")).getroot()
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert cases["counters-match-ledger"].get("classname") == "verify.reconcile"
    failure = cases["counters-match-ledger"].find("failure")
    assert failure is not None and "codesync_http_requests_total  37" in (failure.text or "")
    assert cases["gauges-reach-plateau"].find("skipped") is not None


SUITE_CHECKS = {
    "static": {
        "rules-series-exported",
        "rules-labels-exported",
        "rules-windows-fit-scrape",
        "alerts-severities-routed",
        "rules-promtool-tests",
        "alerts-ratio-scale-invariant",
        "alerts-thresholds-match-annotations",
    },
    "alerts": {"rules-promtool-generated"},
    "dashboard": {
        "dashboard-series-exported",
        "dashboard-panels-return-data",
        "dashboard-panels-job-scoped",
        "dashboard-panels-match-ledger",
    },
    "reconcile": {
        "metrics-present",
        "metrics-labels-match-contract",
        "counters-match-ledger",
        "gauges-return-to-baseline",
        "gauges-reach-plateau",
        "latency-quantiles-consistent",
        "counters-reach-lower-bound",
        "uptime-agrees-with-users",
    },
}


def test_every_check_has_a_group_and_a_symptom() -> None:
    for group, names in SUITE_CHECKS.items():
        for name in names:
            assert REGISTRY[name].group == group, name
    for chk in REGISTRY.values():
        assert chk.group and chk.symptom, chk.name


def test_expectations_predict_from_ledger_rows() -> None:
    ledger = Ledger()
    ledger.count("http", "GET", "/health", 200, n=5)
    ledger.count("http", "POST", "/api/sessions/:id/search", 429)
    ledger.count("http", "GET", "/health", 0, n=2)  # never reached the server
    ledger.count("rate_limited", "search")
    ledger.count("rate_limited", "yjs", n=2)
    ledger.count("connection", "socketio", "opened", n=4)
    ledger.count("connection", "socketio", "closed", n=3)
    ledger.count("message", "socketio", "session:join", "sent", n=2)
    ledger.count("message", "socketio", "chat:message:send", "sent", n=7)
    ledger.count("message", "yjs", "update", "sent", n=11)
    table = load_expectations()
    by_metric = {}
    for spec in table.counters:
        for key, (n, _rows) in predict_counter(ledger, spec).items():
            by_metric[(spec.metric, key)] = by_metric.get((spec.metric, key), 0) + n
    assert (
        by_metric[("codesync_http_requests_total", (("method", "GET"), ("route", "/health"), ("status_code", "200")))]
        == 5
    )
    assert (
        "codesync_http_requests_total",
        (("method", "GET"), ("route", "/health"), ("status_code", "0")),
    ) not in by_metric
    assert by_metric[("codesync_rate_limit_hits_total", (("type", "API"),))] == 1
    assert by_metric[("codesync_rate_limit_hits_total", (("type", "WS"),))] == 2
    assert by_metric[("codesync_websocket_connections_total", (("type", "socketio"),))] == 4
    assert by_metric[("codesync_websocket_messages_total", (("direction", "inbound"), ("type", "socketio")))] == 2
    assert by_metric[("codesync_websocket_messages_total", (("direction", "outbound"), ("type", "socketio")))] == 7
    assert by_metric[("codesync_websocket_messages_total", (("direction", "inbound"), ("type", "yjs")))] == 11
    gauge = next(g for g in table.gauges if g.metric == "codesync_websocket_connections_active")
    ups, downs, rows = predict_gauge(ledger, gauge)[(("type", "socketio"),)]
    assert (ups, downs) == (4, 3)
    assert rows == ["connection{channel=socketio,event=closed}=3", "connection{channel=socketio,event=opened}=4"]


def test_guide_expectations_map_to_guide_names() -> None:
    table = load_expectations(contract_name="guide")
    assert {s.metric for s in table.counters} == {
        "http_requests_total",
        "http_request_duration_seconds_count",
        "http_response_size_bytes_count",
        "rate_limit_hits_total",
        "ws_connection_failures_total",
    }
    assert set(table.unreconciled) == {
        "http_request_size_bytes",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    }
    assert table.counters[0].labels == {"method": "method", "path": "route", "status": "status"}


def test_window_from_ledger_phases_and_meta(tmp_path: Path) -> None:
    doc = {
        "phases": [
            {"name": "ramp", "start": 100.0, "end": 110.0},
            {"name": "steady", "start": 110.0, "end": 115.0},
            {"name": "cool", "start": 115.0, "end": 140.0},
        ],
        "meta": {"started_at": 95.0},
        "complete": True,
        "written_at": 141.5,
    }
    window = LoadWindow.from_ledger_doc(doc)
    assert (window.start, window.end, window.plateau) == (95.0, 141.5, (110.0, 115.0))  # named plateau wins
    doc["phases"][1]["end"] = None
    with pytest.raises(HarnessError, match="phase 'steady' never ended"):
        LoadWindow.from_ledger_doc(doc)
    with pytest.raises(HarnessError, match="no load phases"):
        LoadWindow.from_ledger_doc({"phases": []})
    path = tmp_path / "ledger.json"
    path.write_text(json.dumps({"phases": [{"name": "a", "start": 1, "end": 2}, {"name": "b", "start": 2, "end": 9}]}))
    assert LoadWindow.from_ledger_file(path).plateau == (2.0, 9.0)  # else the longest phase


def test_alert_scenarios_of_a_run_whose_stack_is_gone_need_no_prometheus(tmp_path: Path) -> None:
    """A gate's trial directory (its stack stopped, no Prometheus in its ledger) verified with
    --alert-scenarios: the scenarios start stacks of their own, so the run's Prometheus is not
    asked for (benchmarks/false_alarms.py does this). A check that would read it still needs it."""
    run_dir = small_run(tmp_path)
    env = {"CODESYNC_STATE_DIR": str(tmp_path / "state")}  # no recorded stack to fall back on
    done = run_cli(
        "verify", str(run_dir), "--alert-scenarios", "--check", "alerts-thresholds-match-annotations", env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith("alerts-thresholds-match-annotations"))
    assert row.split()[1] == "PASS", done.stdout
    asks = run_cli("verify", str(run_dir), "--alert-scenarios", "--check", "counters-match-ledger", env=env)
    one_line_error(asks, "no Prometheus to verify against", "--prometheus-url")
