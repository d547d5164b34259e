"""Reports from a small run directory: JSON, Markdown, self-contained HTML, JUnit XML, the CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

from codesync_load.gates import evaluate_gates, parse_gate
from codesync_load.ledger import Ledger
from reports import write_reports
from reports.junit import write_junit_suites
from verify.checks.base import CheckResult, Evidence

REPO = Path(__file__).resolve().parents[2]


def small_run(tmp_path: Path) -> Path:
    run = tmp_path / "run-1"
    ledger = Ledger(meta={"profile": "smoke", "run_id": "r1"})
    ledger.phase_start("ramp", at=100.0)
    ledger.phase_start("steady", at=104.0)
    for ms in range(1, 11):
        ledger.sample("yjs_propagation_s", ms / 1000.0)
    ledger.count("http", "GET", "/api/sessions", 200, n=7)
    ledger.count("http", "PUT", "/api/sessions/:id/files/:path/content", 500, n=2)
    ledger.count("connection", "yjs", "opened", n=3)
    ledger.phase_end(at=114.0)
    ledger.write(run / "ledger.json", complete=True)
    (run / "target.json").write_text(json.dumps({"api_url": "http://127.0.0.1:1"}))
    return run


def checks() -> list[CheckResult]:
    ok = CheckResult.passed("28 counter series moved exactly as the ledger predicts")
    ok.name = "counters-match-ledger"
    panel = CheckResult.failed(
        "1 known panels disagree with the ledger",
        evidence=Evidence(
            ("panel", "meaning", "expected", "observed"), [("Request Rate", "count over the run", 9, 4.5)]
        ),
    )
    panel.name = "dashboard-panels-match-ledger"
    return [ok, panel]


def gate_results(run: Path) -> list[CheckResult]:
    doc = json.loads((run / "ledger.json").read_text())
    return evaluate_gates(
        [parse_gate("p95(edit_propagation) < 5ms", "g:1"), parse_gate("error_rate < 50%", "g:2")], [doc]
    )


class Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)
        self.links += [v for k, v in attrs if k in ("src", "href") and v]


def test_reports_from_a_small_run(tmp_path: Path) -> None:
    run = small_run(tmp_path)
    gates = gate_results(run)
    assert [g.verdict for g in gates] == ["fail", "pass"]  # p95 of 1..10 ms is 9.55 ms; 2/9 errors
    paths = write_reports(
        [run],
        tmp_path / "out",
        checks=[c.to_dict() for c in checks()],
        gates=[g.to_dict() for g in gates],
        title="t <&> report",
    )
    doc = json.loads(paths["json"].read_text())
    assert doc["schema"] == "codesync-report/1" and doc["verdict"] == "fail"
    assert doc["counts"]["gates"] == {"pass": 1, "fail": 1, "skip": 0, "error": 0}
    run_doc = doc["runs"][0]
    assert run_doc["ledger"]["http_requests"] == 9 and run_doc["ledger"]["http_5xx"] == 2
    assert run_doc["window"] == [100.0, 114.0]
    latency = run_doc["latency"][0]
    assert latency["series"] == "yjs_propagation_s" and latency["n"] == 10
    assert latency["p50"] == 0.0055 and latency["max"] == 0.010
    assert doc["dashboard_panels"][0]["evidence"]["rows"] == [["Request Rate", "count over the run", 9, 4.5]]

    md = paths["markdown"].read_text()
    assert md.splitlines()[0] == "# t <&> report - FAIL"
    assert "| gate: p95(edit_propagation) < 5ms | FAIL | 9.55ms | < 5ms |" in md
    assert "## Dashboard panels beside the harness's measurement" in md
    assert "| Request Rate | count over the run | 9 | 4.5 |" in md
    assert "| yjs_propagation_s | 10 | 5.5 ms | 5.5 ms |" in md
    assert "| PUT | /api/sessions/:id/files/:path/content | 500 | 2 |" in md

    page = paths["html"].read_text()
    parser = Collect()
    parser.feed(page)
    assert "script" not in parser.tags and "link" not in parser.tags and "img" not in parser.tags
    assert parser.links == []  # nothing to fetch: opens from a CI artifact zip
    assert "t &lt;&amp;&gt; report" in page and "<span class='fail'>FAIL</span>" in page
    assert re.search(r"<td>Request Rate</td><td>count over the run</td><td>9</td><td>4.5</td>", page)


def test_junit_parses_back(tmp_path: Path) -> None:
    run = small_run(tmp_path)
    skipped = CheckResult.skipped("no Prometheus given")
    skipped.name = "metrics-present"
    path = write_junit_suites({"verify": [*checks(), skipped], "gates": gate_results(run)}, tmp_path / "j.xml")
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("skipped"), root.get("errors")) == ("5", "2", "1", "0")
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert sorted(suites) == ["gates", "verify"]
    failed = suites["gates"].find("testcase[@name='gate: p95(edit_propagation) < 5ms']")
    assert failed is not None
    failure = failed.find("failure")
    assert failure is not None and failure.get("message") == "p95(edit_propagation) = 9.55ms, expected < 5ms"
    assert "9.55ms" in (failure.text or "")
    assert suites["verify"].find("testcase[@name='metrics-present']/skipped") is not None
    assert suites["verify"].find("testcase[@name='counters-match-ledger']/system-out") is not None


def test_report_command(tmp_path: Path) -> None:
    run = small_run(tmp_path)
    (run / "verify").mkdir()
    (run / "verify" / "results.json").write_text(json.dumps({"checks": [c.to_dict() for c in checks()]}))
    proc = subprocess.run(
        [sys.executable, "-m", "codesync_load.cli", "report", str(run)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == str(run / "report" / "report.html")
    doc = json.loads((run / "report" / "report.json").read_text())
    assert [c["name"] for c in doc["checks"]] == ["counters-match-ledger", "dashboard-panels-match-ledger"]
    assert doc["verdict"] == "fail"
    bad = subprocess.run(
        [sys.executable, "-m", "codesync_load.cli", "report", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        f"codesync-load: error: {tmp_path} holds neither ledger.json nor gate.json; pass a run or gate directory"
    )


def test_informational_checks_are_shown_but_do_not_decide(tmp_path: Path) -> None:
    run = small_run(tmp_path)
    ok, panel = checks()
    paths = write_reports([run], tmp_path / "out", checks=[ok.to_dict()], info=[panel.to_dict()])
    doc = json.loads(paths["json"].read_text())
    assert doc["verdict"] == "pass"  # the failed panel check is informational
    assert [c["name"] for c in doc["info"]] == ["dashboard-panels-match-ledger"]
    assert doc["dashboard_panels"][0]["name"] == "dashboard-panels-match-ledger"
    md = paths["markdown"].read_text()
    assert "## Informational checks (not gating)" in md
    assert "| dashboard-panels-match-ledger | FAIL |" in md
    assert "<h2>Informational checks (not gating)</h2>" in paths["html"].read_text()


def test_the_panel_table_is_shown_for_a_passing_run_and_a_skip_says_why(tmp_path: Path) -> None:
    run = small_run(tmp_path)
    columns = ("panel", "meaning", "query as evaluated", "harness measured (ledger)", "agrees", "tolerance")
    panel = CheckResult.passed(
        "1 known panels show their reference and agree with the ledger; 1 other panel queries listed",
        tolerance="counts: ±(2.2 x scrape / window)",
        evidence=Evidence(
            columns,
            [
                ("Request Rate", "counter_rate", "sum(rate(x[4s]))", "http: 9", "yes", "9±1.5"),
                ("Memory Usage", "-", "process_resident_memory_bytes", "-", "-", "-"),
            ],
        ),
    )
    panel.name = "dashboard-panels-match-ledger"
    grafana = CheckResult.skipped("no Grafana given (--grafana-url, or a compose stack's Grafana)")
    grafana.name = "dashboard-grafana-matches-prometheus"
    paths = write_reports([run], tmp_path / "out", checks=[panel.to_dict(), grafana.to_dict()])
    doc = json.loads(paths["json"].read_text())
    assert doc["verdict"] == "pass"
    assert [p["name"] for p in doc["dashboard_panels"]] == [panel.name, grafana.name]

    md = paths["markdown"].read_text()
    section = md.split("## Dashboard panels beside the harness's measurement\n", 1)[1]
    assert section.startswith("\n### dashboard-panels-match-ledger: PASS\n")
    assert "| Request Rate | counter_rate | sum(rate(x[4s])) | http: 9 | yes | 9±1.5 |" in section
    assert "| Memory Usage | - | process_resident_memory_bytes | - | - | - |" in section
    assert "tolerance: counts: ±(2.2 x scrape / window)" in section
    assert "### dashboard-grafana-matches-prometheus: SKIP" in section
    assert "_no panel table: the check did not evaluate the panels_" in section
    assert md.count("| Request Rate |") == 1

    page = paths["html"].read_text()
    assert "<h3>dashboard-panels-match-ledger: <span class='pass'>PASS</span></h3>" in page
    assert re.search(r'<td>Request Rate</td>.*?<td>http: 9</td><td class="yes">yes</td><td>9±1.5</td>', page)
    assert page.count("<td>Request Rate</td>") == 1  # not repeated under the check's details
    assert "<h3>dashboard-grafana-matches-prometheus: <span class='skip'>SKIP</span></h3>" in page


def test_snapshot_grid_ends_at_the_end_of_the_window() -> None:
    """The last evaluation point is the window's end (the scrape after the load), whatever the span."""
    from reports.snapshot import grid_start

    assert grid_start(100.0, 134.0, 10.0) == 94.0  # 94, 104, 114, 124, 134: ends at 134, not 130
    assert grid_start(100.0, 130.0, 10.0) == 100.0  # already on the grid: unchanged
    assert grid_start(100.0, 100.5, 1.0) == 99.5
