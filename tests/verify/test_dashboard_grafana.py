"""The dashboard table (every panel beside the ledger) and Grafana's API held against Prometheus.

One real twin, one real Prometheus (1 s scrapes) and the known traffic of tests/verify/_live.py
for the whole module (about 15 s); Grafana is the loopback test double of
tests/verify/_grafana_double.py, which forwards every query to that real Prometheus. Two
tests start a twin and Prometheus of their own: one with a frozen counter, one answering a
seeded 20 % of /api with 500 (error-burst) to hold the Error Rate panel to the ledger's share.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from codesync_load.errors import HarnessError
from codesync_load.ledger import Ledger
from codesync_load.stack.ports import free_port
from codesync_load.stack.state import write_state
from codesync_load.twin_process import TwinProcess, start_twin
from scenarios.clients.rest import RestClient
from scenarios.recording import Recorder
from tests.conftest import ISOLATED_ENV, stopped_at_exit
from tests.stack._support import run_cli
from tests.verify._grafana_double import GrafanaDouble
from tests.verify._live import (
    HTTP_REQUESTS,
    KnownTraffic,
    LiveProm,
    drive_known_traffic,
    start_prometheus,
    wait_for_next_scrape,
)
from verify.checks import REGISTRY, CheckResult
from verify.context import MONITORING, VerifyContext, VerifyOptions
from verify.grafana_api import GrafanaAPI, attach_grafana
from verify.prom import Prom

DASHBOARD = MONITORING / "grafana" / "dashboards" / "codesync.json"
GRAFANA_CHECK = "dashboard-grafana-matches-prometheus"
PANEL_CHECK = "dashboard-panels-match-ledger"
# Ten panels; "Database Queries" has two queries.
PANEL_QUERIES = [
    "Request Rate",
    "Error Rate",
    "Response Time (p95)",
    "Active WebSocket Connections",
    "Active Sessions",
    "Memory Usage",
    "CPU Usage",
    "Database Queries",
    "Database Queries",
    "Redis Operations",
    "Rate Limit Hits",
]


@dataclass
class Telemetry:
    twin: TwinProcess
    live: LiveProm
    traffic: KnownTraffic


@contextlib.contextmanager
def running(
    work: Path, faults: tuple[str, ...] = (), drive: Callable[[str, Prom, Path], KnownTraffic] = drive_known_traffic
) -> Iterator[Telemetry]:
    """A twin, a Prometheus scraping it and the known traffic (or `drive`'s); both processes stopped after."""
    with stopped_at_exit() as started:
        twin = start_twin(work, faults=faults, env=ISOLATED_ENV, extra_args=["--bcrypt-rounds", "4"])
        started.append(twin)
        prom_dir = work / "prom"
        prom_dir.mkdir()
        live = start_prometheus(
            prom_dir, {"codesync-backend": f"127.0.0.1:{twin.api_port}", "codesync-yjs": f"127.0.0.1:{twin.yjs_port}"}
        )
        started.append(live)
        yield Telemetry(twin, live, drive(twin.api_url, live.prom, work / "run"))


@pytest.fixture(scope="module")
def telemetry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Telemetry]:
    with running(tmp_path_factory.mktemp("grafana")) as t:
        yield t


def context(t: Telemetry, grafana: GrafanaDouble | None = None, password: str | None = None) -> VerifyContext:
    ctx = VerifyContext(VerifyOptions(run_dir=t.traffic.run_dir, prometheus_url=t.live.url))
    if grafana is not None:
        attach_grafana(ctx, GrafanaAPI(grafana.url, user="admin", password=password or grafana.password))
    return ctx


def rows(result: CheckResult) -> list[tuple]:
    assert result.evidence is not None, result.render()
    return result.evidence.rows


def by_panel(result: CheckResult) -> dict[str, tuple]:
    return {row[0]: row for row in rows(result)}


# -- every panel beside the ledger ------------------------------------------------------------


def test_the_panel_table_lists_every_panel_beside_the_ledger_on_a_passing_run(telemetry: Telemetry) -> None:
    result = REGISTRY[PANEL_CHECK].run(context(telemetry))
    assert result.verdict == "pass", result.render()
    assert (
        result.summary == "6 known panels show their reference and agree with the ledger; 5 other panel queries listed"
    )
    assert [row[0] for row in rows(result)] == PANEL_QUERIES
    table = by_panel(result)
    request = table["Request Rate"]
    assert request[1] == "counter_rate" and request[5] == f"http: {HTTP_REQUESTS}" and request[6] == "yes"
    assert request[2].startswith('sum by (route) (rate(codesync_http_requests_total{job="codesync-backend"}[')
    assert "route=/api/sessions/:id/search" in request[3]
    assert table["Rate Limit Hits"][5] == "rate_limited: 1"
    assert table["Error Rate"][4] == "no data: no 5xx series" and table["Error Rate"][5].startswith("0 5xx of ")
    assert table["Active Sessions"][5] == "2 opened" and table["Active Sessions"][6] == "yes"
    assert table["Active WebSocket Connections"][5] == "1 opened"
    p95 = table["Response Time (p95)"]
    assert p95[6] == "yes" and p95[5].startswith("client p95 ") and p95[5].endswith(" http_s samples")
    for title in ("Memory Usage", "CPU Usage", "Redis Operations"):
        assert table[title][1:2] == ("-",) and table[title][5:7] == ("-", "-")
    assert table["Memory Usage"][3].count("job=") == 2  # both twin processes, drawn over the window
    assert table["Redis Operations"][3] == "no data"  # no redis exporter in this stack


def test_a_frozen_counter_shows_no_in_the_request_rate_row(tmp_path: Path) -> None:
    with running(tmp_path, faults=("http-counter-frozen",)) as frozen:
        result = REGISTRY[PANEL_CHECK].run(context(frozen))
        assert result.verdict == "fail", result.render()
        assert result.summary.endswith(": Request Rate")
        request = by_panel(result)["Request Rate"]
        assert request[4] == "no data: 0 counted" and request[5] == f"http: {HTTP_REQUESTS}"
        assert request[6] == "no"
        assert [row[0] for row in rows(result) if row[6] == "no"] == ["Request Rate"]


BURST_BATCHES = 8  # one batch between scrapes: the run spans several, as a panel's rate() needs


def drive_error_burst(api_url: str, prom: Prom, run_dir: Path) -> KnownTraffic:
    """Per scrape interval 25 GET /api/auth/me without a login (401, or 500 when the twin's
    seeded error-burst draws it) and 5 GET /health (never 500: not /api), all in the ledger."""
    run_dir.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(meta={"profile": "verify-test", "prometheus_url": prom.url})
    api = RestClient(api_url, observers=(Recorder(ledger).http,))
    try:
        wait_for_next_scrape(prom, "codesync-backend")
        ledger.phase_start("steady")
        for _ in range(BURST_BATCHES):
            for _ in range(5):
                api.health()
                for _ in range(5):
                    api.me()
            wait_for_next_scrape(prom, "codesync-backend")
        ledger.phase_end()
    finally:
        api.close()
    ledger.write(run_dir / "ledger.json", complete=True)
    return KnownTraffic(run_dir, ledger, "", "")


def rewrite_ledger(run_dir: Path, to: Path, change: Callable[[dict], None]) -> Path:
    """A copy of the run directory whose ledger.json `change` edited in place."""
    to.mkdir()
    doc = json.loads((run_dir / "ledger.json").read_text())
    change(doc)
    (to / "ledger.json").write_text(json.dumps(doc))
    return to


def move_status(doc: dict, source: int, target: int, keep: int) -> None:
    """Relabel all but `keep` of the ledger's HTTP responses with status `source` as `target`."""
    for row in list(doc["counts"]["http"]):
        if row["status"] == source:
            moved = max(0, row["count"] - keep)
            keep = max(0, keep - row["count"])
            row["count"] -= moved
            doc["counts"]["http"].append({**row, "status": target, "count": moved})


def http_counts(doc: dict) -> tuple[int, int]:
    rows = [r for r in doc["counts"]["http"] if r["status"]]
    return sum(r["count"] for r in rows if r["status"] == 500), sum(r["count"] for r in rows)


def test_the_error_rate_row_holds_the_panel_to_the_ledgers_5xx_share(tmp_path: Path) -> None:
    """A twin answering a seeded 20 % of /api with 500: the Error Rate panel's whole-run value is
    within the bounds around the ledger's 5xx share; the same panel against a ledger claiming
    another share (edited copies of the run's ledger) is a "no", where the old rule ("non-zero
    exactly when the ledger has 5xx") said yes."""
    with running(tmp_path, faults=("error-burst=0.2",), drive=drive_error_burst) as burst:
        run_dir = burst.traffic.run_dir
        result = REGISTRY[PANEL_CHECK].run(context(burst))
        row = by_panel(result)["Error Rate"]
        errors, total = http_counts(json.loads((run_dir / "ledger.json").read_text()))
        assert 0 < errors < total == BURST_BATCHES * 30
        assert row[5] == f"{errors} 5xx of {total} responses ({errors / total:.4g})"
        shown = float(row[4].removesuffix(" over the run"))
        low, high = (float(x) for x in row[7].removesuffix(", not 0").split(".."))
        assert row[6] == "yes", result.render()
        assert low <= shown <= high and low <= errors / total <= high
        assert low > 0.01 and high < 0.5, row  # a judgment: 1 % or 50 % would not pass
        assert re.match(r"[1-9]\d* series born in the run; before their first scrape they counted ", row[8]), row
        assert by_panel(result)["Request Rate"][5] == f"http: {total}"

        # The ledger says 1 5xx (the others answered 401): the panel's ~20 % is far above the bound.
        understated = rewrite_ledger(run_dir, tmp_path / "understated", lambda d: move_status(d, 500, 401, keep=1))
        result = panels_against(understated, burst.live)
        row = by_panel(result)["Error Rate"]
        assert result.verdict == "fail" and "Error Rate" in result.summary, result.render()
        assert row[5].startswith(f"1 5xx of {total} responses") and row[6] == "no"
        assert float(row[4].removesuffix(" over the run")) > float(row[7].removesuffix(", not 0").split("..")[1])

        # The ledger says every /api answer was a 500: the panel's share is far below the bound.
        overstated = rewrite_ledger(run_dir, tmp_path / "overstated", lambda d: move_status(d, 401, 500, keep=0))
        result = panels_against(overstated, burst.live)
        row = by_panel(result)["Error Rate"]
        assert row[6] == "no" and "Error Rate" in result.summary, result.render()
        assert float(row[4].removesuffix(" over the run")) < float(row[7].split("..")[0])


def panels_against(run_dir: Path, live: LiveProm) -> CheckResult:
    return REGISTRY[PANEL_CHECK].run(VerifyContext(VerifyOptions(run_dir=run_dir, prometheus_url=live.url)))


def twin_dashboard(to: Path) -> Path:
    """The project's dashboard without what only the exporters answer (no exporter in this stack):
    the Redis panel and the postgres query of Database Queries."""
    doc = json.loads(DASHBOARD.read_text())
    panels = []
    for panel in doc["panels"]:
        panel["targets"] = [t for t in panel.get("targets", []) if "-exporter" not in t.get("expr", "")]
        if panel["targets"]:
            panels.append(panel)
    doc["panels"] = panels
    to.write_text(json.dumps(doc))
    return to


RETURN_DATA = "dashboard-panels-return-data"


def test_a_panel_that_shows_nothing_is_named_not_counted_as_data(telemetry: Telemetry, tmp_path: Path) -> None:
    """No 5xx in the known traffic: Error Rate shows nothing, which the ledger explains, and the
    summary says so instead of counting it among the queries that return data."""
    dashboard = twin_dashboard(tmp_path / "twin.json")
    options = VerifyOptions(run_dir=telemetry.traffic.run_dir, prometheus_url=telemetry.live.url, dashboard=dashboard)
    result = REGISTRY[RETURN_DATA].run(VerifyContext(options))
    assert result.verdict == "pass", result.render()
    assert result.summary == (
        "8 panel queries return data over the load window; 1 shows nothing because the ledger has nothing "
        f"it counts: Error Rate (no 5xx of {HTTP_REQUESTS} responses)"
    )
    assert [row[0] for row in rows(result)] == ["Error Rate"]
    assert rows(result)[0][2] == f"no data, as the ledger predicts: no 5xx of {HTTP_REQUESTS} responses"

    # A ledger that had a 5xx does not explain an empty Error Rate panel; nor does an incomplete one.
    def one_500(doc: dict) -> None:
        doc["counts"]["http"].append({"method": "GET", "route": "/api/sessions", "status": 500, "count": 1})

    def incomplete(doc: dict) -> None:
        doc["complete"] = False

    for name, change in (("with-5xx", one_500), ("incomplete", incomplete)):
        run_dir = rewrite_ledger(telemetry.traffic.run_dir, tmp_path / name, change)
        options = VerifyOptions(run_dir=run_dir, prometheus_url=telemetry.live.url, dashboard=dashboard)
        result = REGISTRY[RETURN_DATA].run(VerifyContext(options))
        assert result.verdict == "fail", result.render()
        assert result.summary == "1 panel queries return nothing over the load window: Error Rate", name
        assert rows(result)[0][:1] + rows(result)[0][2:] == ("Error Rate", "no data")


# -- Grafana's API beside Prometheus ----------------------------------------------------------


def test_grafana_shows_every_panel_as_prometheus_answers_it(telemetry: Telemetry) -> None:
    with GrafanaDouble(telemetry.live.url, DASHBOARD) as grafana:
        ctx = context(telemetry, grafana)
        result = REGISTRY[GRAFANA_CHECK].run(ctx)
    assert result.verdict == "pass", result.render()
    assert result.summary == f"Grafana shows all {len(PANEL_QUERIES)} panel queries as Prometheus answers them"
    assert [row[0] for row in rows(result)] == PANEL_QUERIES
    assert {row[4] for row in rows(result)} == {"yes"}
    compared = by_panel(result)
    assert compared["Request Rate"][2] > 1 and compared["Request Rate"][3] > 10  # series and points, not empty
    assert compared["Redis Operations"][2:4] == (0, 0)  # nothing on either side
    # Every query went through Grafana's API, already substituted, with the 1 s step.
    assert len(grafana.queries) == len(PANEL_QUERIES)
    assert all("$__" not in q["expr"] and q["intervalMs"] == 1000 for q in grafana.queries)
    served = json.loads(ctx.artifacts["grafana_dashboard"].read_text())
    assert served["uid"] == "codesync-monitoring"


def test_a_coarser_grafana_step_is_aligned_not_reported(telemetry: Telemetry) -> None:
    """Grafana raises the step to its datasource's minimum (3 s here) and floors the range to
    it; the direct evaluation follows, so the one series of Active Sessions is compared at
    every 3 s step of the window."""
    with GrafanaDouble(telemetry.live.url, DASHBOARD, min_interval_s=3.0) as grafana:
        ctx = context(telemetry, grafana)
        result = REGISTRY[GRAFANA_CHECK].run(ctx)
    assert result.verdict == "pass", result.render()
    # Prometheus's own points at Grafana's floored 3 s steps: every step of the window, less
    # the first when the series appeared after that (floored) step.
    first, last = math.floor(ctx.window.start / 3) * 3, math.floor(ctx.after_time / 3) * 3
    (series,) = telemetry.live.prom.range('codesync_sessions_active{job="codesync-backend"}', first, last, 3.0)
    steps = len(series.points)
    assert (last - first) / 3 <= steps <= (last - first) / 3 + 1
    assert by_panel(result)["Active Sessions"][2:5] == (1, steps, "yes")


def test_a_grafana_answer_that_differs_fails_the_named_panel(telemetry: Telemetry) -> None:
    with GrafanaDouble(telemetry.live.url, DASHBOARD, tamper={"codesync_sessions_active": "scale"}) as grafana:
        result = REGISTRY[GRAFANA_CHECK].run(context(telemetry, grafana))
    assert result.verdict == "fail", result.render()
    assert result.summary == "1 panel queries differ between Grafana and Prometheus: Active Sessions"
    bad = [row for row in rows(result) if row[4] == "no"]
    assert [(row[0], row[1]) for row in bad] == [
        ("Active Sessions", 'codesync_sessions_active{job="codesync-backend"}')
    ]
    problem = bad[0][5]
    assert problem.startswith("instance=") and ": Grafana " in problem and ", Prometheus " in problem
    shown, direct = (float(part.split()[-1]) for part in problem.split(": ", 1)[1].split(", "))
    assert math.isclose(shown, 1.5 * direct)


def test_a_datasource_error_fails_the_named_panel_with_grafanas_message(telemetry: Telemetry) -> None:
    with GrafanaDouble(telemetry.live.url, DASHBOARD, tamper={"codesync_rate_limit_hits_total": "error"}) as grafana:
        result = REGISTRY[GRAFANA_CHECK].run(context(telemetry, grafana))
    assert result.verdict == "fail", result.render()
    bad = [row for row in rows(result) if row[4] == "no"]
    assert [row[0] for row in bad] == ["Rate Limit Hits"]
    assert "codesync_rate_limit_hits_total" in bad[0][1]
    assert bad[0][5] == (
        'Grafana error: HTTP 500: Post "http://prometheus:9090/api/v1/query_range": connection refused'
    )


def test_a_dashboard_grafana_does_not_serve_fails_with_its_uid(telemetry: Telemetry) -> None:
    with GrafanaDouble(telemetry.live.url, None) as grafana:
        result = REGISTRY[GRAFANA_CHECK].run(context(telemetry, grafana))
    assert result.verdict == "fail"
    assert result.summary == (
        "Grafana has no dashboard with uid 'codesync-monitoring' (Dashboard not found); "
        "is monitoring/grafana/provisioning mounted into Grafana?"
    )


def test_grafana_down_or_refusing_ends_with_one_line(telemetry: Telemetry) -> None:
    port = free_port()
    ctx = VerifyContext(VerifyOptions(run_dir=telemetry.traffic.run_dir, prometheus_url=telemetry.live.url))
    attach_grafana(ctx, GrafanaAPI(f"http://127.0.0.1:{port}", user="admin", password="x", timeout=3))
    with pytest.raises(HarnessError) as down:
        REGISTRY[GRAFANA_CHECK].run(ctx)
    assert str(down.value) == (
        f"Grafana at http://127.0.0.1:{port} is unreachable (ConnectionError); start the compose stack "
        "or pass the right --grafana-url"
    )
    with GrafanaDouble(telemetry.live.url, DASHBOARD) as grafana:
        with pytest.raises(HarnessError) as refused:
            REGISTRY[GRAFANA_CHECK].run(context(telemetry, grafana, password="wrong"))
        assert str(refused.value) == (
            f"Grafana at {grafana.url} refused GET /api/dashboards/uid/codesync-monitoring (HTTP 401); "
            "pass --grafana-user and --grafana-password, or --grafana-token, of a viewer account"
        )
    # The command: exit 2 and that one line, no traceback.
    done = run_cli(
        "verify",
        str(telemetry.traffic.run_dir),
        "--prometheus-url",
        telemetry.live.url,
        "--grafana-url",
        f"http://127.0.0.1:{port}",
        "--check",
        GRAFANA_CHECK,
        env={"GRAFANA_PASSWORD": ""},
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"codesync-load: error: Grafana at http://127.0.0.1:{port} is unreachable (ConnectionError); "
        "start the compose stack or pass the right --grafana-url"
    )


def test_without_a_grafana_the_check_is_skipped_with_the_reason(telemetry: Telemetry) -> None:
    result = REGISTRY[GRAFANA_CHECK].run(context(telemetry))
    assert (result.verdict, result.summary) == (
        "skip",
        "no Grafana in this stack (--grafana-url, or a compose stack's Grafana)",
    )


def test_the_command_takes_grafana_from_a_recorded_compose_stack_and_the_report_shows_both_tables(
    telemetry: Telemetry, tmp_path: Path
) -> None:
    with GrafanaDouble(telemetry.live.url, DASHBOARD, password="from-the-state") as grafana:
        state = tmp_path / "state"
        write_state(
            state,
            {
                "backend": "compose",
                "state_dir": str(state),
                "prometheus_url": telemetry.live.url,
                "components": {},
                "grafana": {"url": grafana.url, "user": "admin", "password": "from-the-state"},
            },
        )
        done = run_cli(
            "verify",
            str(telemetry.traffic.run_dir),
            "--backend",
            "compose",
            "--state-dir",
            str(state),
            "--check",
            "dashboard-panels-match-ledger",
            "--check",
            GRAFANA_CHECK,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    record = json.loads((telemetry.traffic.run_dir / "verify" / "results.json").read_text())
    assert record["inputs"]["grafana"] == grafana.url
    verdicts = {c["name"]: (c["verdict"], len(c["evidence"]["rows"])) for c in record["checks"]}
    assert verdicts == {PANEL_CHECK: ("pass", 11), GRAFANA_CHECK: ("pass", 11)}

    report = run_cli("report", str(telemetry.traffic.run_dir))
    assert report.returncode == 0, report.stderr
    md = (telemetry.traffic.run_dir / "report" / "report.md").read_text()
    section = md.split("## Dashboard panels beside the harness's measurement", 1)[1]
    assert f"### {PANEL_CHECK}: PASS" in section and f"### {GRAFANA_CHECK}: PASS" in section
    assert "| Request Rate | counter_rate | sum by (route) (rate(codesync_http_requests_total" in section
    assert f"| http: {HTTP_REQUESTS} | yes |" in section
    page = (telemetry.traffic.run_dir / "report" / "report.html").read_text()
    assert "<h2>Dashboard panels beside the harness's measurement</h2>" in page
    assert f'<td>http: {HTTP_REQUESTS}</td><td class="yes">yes</td>' in page


def test_a_recorded_compose_stack_is_read_back_as_compose(tmp_path: Path) -> None:
    """`stack up --backend compose` records its Grafana; later commands read it back as compose."""
    from codesync_load.stack import recorded_stack
    from codesync_load.stack.compose import ComposeStack

    grafana = {"url": "http://127.0.0.1:3001", "user": "admin", "password": "p"}
    write_state(
        tmp_path,
        {
            "backend": "compose",
            "state_dir": str(tmp_path),
            "prometheus_url": "http://127.0.0.1:9090",
            "components": {"grafana": {"url": grafana["url"], "pid": None, "service": "grafana"}},
            "grafana": grafana,
        },
    )
    stack = recorded_stack(tmp_path)
    assert isinstance(stack, ComposeStack)
    assert stack.grafana == grafana
    assert stack.status()["components"]["grafana"]["url"] == grafana["url"]
    done = run_cli("stack", "down", "--state-dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "stopped compose stack (grafana)"
    assert not (tmp_path / "stack.json").exists()


def test_frames_decode_null_entities_and_compare_exactly() -> None:
    """Grafana's frame JSON (times in ms, NaN/Inf as null + data.entities) read back as series."""
    from verify.grafana_api import compare_series, frames_to_series
    from verify.prom import Series

    frame = {
        "schema": {
            "fields": [
                {"name": "Time", "type": "time"},
                {"name": "Value", "type": "number", "labels": {"__name__": "up", "job": "a"}},
            ]
        },
        "data": {"values": [[1000, 2000, 3000, 4000], [1.0, None, None, 4.0]], "entities": [None, {"Inf": [2]}]},
    }
    (series,) = frames_to_series([frame])
    assert series.labels == {"__name__": "up", "job": "a"}
    assert series.points == [(1.0, 1.0), (3.0, math.inf), (4.0, 4.0)]
    direct = [Series({"job": "a"}, [(1.0, 1.0), (2.0, math.nan), (3.0, math.inf), (4.0, 4.0)])]
    assert compare_series([series], direct) is None
    assert compare_series([series], [Series({"job": "a"}, [(1.0, 1.0), (3.0, math.inf), (4.0, 4.5)])]) == (
        "job=a at t=4.000: Grafana 4, Prometheus 4.5"
    )
    assert compare_series([series], [Series({"job": "b"}, [(1.0, 1.0)])]) == (
        "series differ: only in Grafana ['job=a'], only in Prometheus ['job=b']"
    )
    inner = [Series({"job": "a"}, [(1.0, 1.0), (2.0, 2.0), (3.0, math.inf), (4.0, 4.0)])]
    assert compare_series([series], inner) == "job=a: a point at t=2.000 only in Prometheus (steps not aligned)"


def test_the_pytest_suite_takes_grafana_from_its_options(telemetry: Telemetry, tmp_path: Path) -> None:
    """`pytest verify --grafana-url` asks the same Grafana the command does (one test per check)."""
    with GrafanaDouble(telemetry.live.url, DASHBOARD, password="pytest-secret") as grafana:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "verify",
                "-q",
                "-p",
                "no:cacheprovider",
                "--run-dir",
                str(telemetry.traffic.run_dir),
                "--prometheus-url",
                telemetry.live.url,
                "--grafana-url",
                grafana.url,
                "--grafana-user",
                "admin",
                "-k",
                GRAFANA_CHECK,
                "-rA",
            ],
            cwd=Path(__file__).resolve().parents[2],
            env={**os.environ, "GRAFANA_PASSWORD": "pytest-secret"},
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert f"PASSED verify/test_checks.py::test_check[{GRAFANA_CHECK}]" in done.stdout
    assert "1 passed" in done.stdout
