"""Reconciliation against a real Prometheus scraping a real twin, with a small known traffic.

The healthy twin passes every live check; each metric fault of the twin fails in the check
named for its symptom, with the evidence row that names the metric, labels, expected and
observed values. One twin and one Prometheus per case (1 s scrapes), about 15 s each, most
of it waiting for scrapes: the fault cases run three at a time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from codesync_load.twin_process import TwinProcess, start_twin
from tests.conftest import ISOLATED_ENV, stopped_at_exit
from tests.stack._support import run_cli
from tests.verify._live import HTTP_REQUESTS, KnownTraffic, LiveProm, drive_known_traffic, start_prometheus
from verify.checks import REGISTRY, CheckResult
from verify.checks.reconcile import read_by
from verify.context import VerifyContext, VerifyOptions

LIVE_CHECKS = (
    "metrics-present",
    "metrics-labels-match-contract",
    "counters-match-ledger",
    "gauges-return-to-baseline",
    "gauges-reach-plateau",
    "latency-quantiles-consistent",
    "dashboard-panels-match-ledger",
    "rules-promtool-generated",
    "counters-reach-lower-bound",
)
REPO = Path(__file__).resolve().parents[2]


def verify_run(run_dir: Path, live: LiveProm, names: tuple[str, ...] = LIVE_CHECKS) -> dict[str, CheckResult]:
    ctx = VerifyContext(VerifyOptions(run_dir=run_dir, prometheus_url=live.url))
    return {name: REGISTRY[name].run(ctx) for name in names}


def cli(*args: str) -> subprocess.CompletedProcess:
    """`codesync-load verify ARGS` as a child process (tests/stack/_support.run_cli)."""
    return run_cli("verify", *args, timeout=120)


def test_healthy_twin_passes_every_live_check(
    twin: TwinProcess, live_prom_for: Callable[[TwinProcess], LiveProm], tmp_path: Path
) -> None:
    live = live_prom_for(twin)
    traffic = drive_known_traffic(twin.api_url, live.prom, tmp_path / "run")
    results = verify_run(traffic.run_dir, live)
    for result in results.values():
        assert result.verdict == "pass", result.render()
    # The ground truth, independently of the checks: the counter moved by exactly 37.
    ctx = VerifyContext(VerifyOptions(run_dir=traffic.run_dir, prometheus_url=live.url))
    labels = ("method", "route", "status_code")
    before = read_by(ctx, "codesync_http_requests_total", ("codesync-backend",), labels, ctx.window.start)
    after = read_by(ctx, "codesync_http_requests_total", ("codesync-backend",), labels, ctx.after_time)
    assert sum(after.values()) - sum(before.values()) == HTTP_REQUESTS
    search_429 = (("method", "POST"), ("route", "/api/sessions/:id/search"), ("status_code", "429"))
    assert after[search_429] - before.get(search_429, 0) == 1
    generated = traffic.run_dir / "verify" / "generated_rules_test.yml"
    assert "codesync_http_requests_total" in generated.read_text()  # fed the ledger's rates

    # The command runs the same checks under the same names and writes JUnit into the run dir.
    selection = [arg for name in LIVE_CHECKS for arg in ("--check", name)]
    done = cli(str(traffic.run_dir), "--prometheus-url", live.url, *selection)
    assert done.returncode == 0, done.stdout + done.stderr
    junit = ET.parse(traffic.run_dir / "verify" / "junit.xml").getroot()
    assert [case.get("name") for case in junit.iter("testcase")] == [
        "rules-promtool-generated",
        "dashboard-panels-match-ledger",
        "metrics-present",
        "metrics-labels-match-contract",
        "counters-match-ledger",
        "gauges-return-to-baseline",
        "gauges-reach-plateau",
        "latency-quantiles-consistent",
        "counters-reach-lower-bound",
    ]
    assert junit.get("failures") == "0"
    record = json.loads((traffic.run_dir / "verify" / "results.json").read_text())
    assert record["exit_code"] == 0 and len(record["checks"]) == len(LIVE_CHECKS)

    # And so does the pytest suite, one test id per check.
    suite = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "verify",
            "-q",
            "-rA",
            "-p",
            "no:cacheprovider",
            "--run-dir",
            str(traffic.run_dir),
            "--prometheus-url",
            live.url,
            "-k",
            "counters or gauges",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        check=False,
    )
    assert suite.returncode == 0, suite.stdout[-3000:]
    for name in ("counters-match-ledger", "gauges-return-to-baseline", "gauges-reach-plateau"):
        assert f"PASSED verify/test_checks.py::test_check[{name}]" in suite.stdout


def _rows(result: CheckResult) -> list[tuple]:
    assert result.evidence is not None
    return result.evidence.rows


FAULT_SYMPTOMS = {
    "http-counter-frozen": "counters-match-ledger",
    "ws-gauge-leak": "gauges-return-to-baseline",
    "sessions-gauge-leak": "gauges-return-to-baseline",
    "label-drift": "metrics-labels-match-contract",
    "rate-limit-uncounted": "counters-match-ledger",
    "db-counter-frozen": "counters-reach-lower-bound",
}


GAUGE_LEAKS = ("ws-gauge-leak", "sessions-gauge-leak")
PARALLEL = 3  # fault cases at a time: each mostly waits on its own Prometheus' 1 s scrapes


@dataclass
class FaultRun:
    traffic: KnownTraffic
    live: LiveProm
    results: dict[str, CheckResult]


@pytest.fixture(scope="module")
def fault_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, FaultRun | str]]:
    """fault -> its twin's known traffic, Prometheus and checks (or why they could not run).

    Each fault gets its own twin and Prometheus, as a case of its own would; the cases run
    PARALLEL at a time because each spends its ~15 s waiting for scrapes, not computing. Only
    the checks the test asserts on run (the one named for the symptom, and the counters next
    to a gauge leak): what the others say of a faulty twin is not this test's business.
    Every process is stopped at the end of the module, by PID.
    """
    lock = threading.Lock()
    with stopped_at_exit() as started:

        def one(fault: str) -> tuple[str, FaultRun | str]:
            work = tmp_path_factory.mktemp(fault)
            try:
                twin = start_twin(
                    work, faults=[fault], env=ISOLATED_ENV, extra_args=["--bcrypt-rounds", "4"], name=fault
                )
                with lock:
                    started.append(twin)
                (work / "prom").mkdir()
                live = start_prometheus(
                    work / "prom",
                    {"codesync-backend": f"127.0.0.1:{twin.api_port}", "codesync-yjs": f"127.0.0.1:{twin.yjs_port}"},
                )
                with lock:
                    started.append(live)
                traffic = drive_known_traffic(twin.api_url, live.prom, work / "run")
                named = FAULT_SYMPTOMS[fault]
                names = (named, "counters-match-ledger", "gauges-reach-plateau") if fault in GAUGE_LEAKS else (named,)
                if fault == "db-counter-frozen":
                    names = (named, "counters-match-ledger")
                return fault, FaultRun(traffic, live, verify_run(traffic.run_dir, live, names))
            except Exception as err:  # that fault's test fails with it; the others go on
                return fault, f"{fault}: {type(err).__name__}: {err}"

        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            yield dict(pool.map(one, FAULT_SYMPTOMS))


@pytest.mark.parametrize("fault", list(FAULT_SYMPTOMS))
def test_each_metric_fault_fails_in_the_check_named_for_its_symptom(fault: str, fault_runs: dict) -> None:
    run = fault_runs[fault]
    assert not isinstance(run, str), run
    traffic, live, results = run.traffic, run.live, run.results
    symptom = results[FAULT_SYMPTOMS[fault]]
    assert symptom.verdict == "fail", symptom.render()
    rows = _rows(symptom)

    if fault == "http-counter-frozen":
        assert {r[0] for r in rows} == {"codesync_http_requests_total"}
        assert sum(r[2] for r in rows) == HTTP_REQUESTS  # every request is missing from the counter
        assert {r[3] for r in rows} == {"absent"}
        # The histogram still counts: its _count agrees, so the finding is the counter alone.
        assert not any(r[0].endswith("_count") for r in rows)
    elif fault == "ws-gauge-leak":
        assert [r[:5] for r in rows] == [("codesync_websocket_connections_active", "type=socketio", "0", "0", "1")]
        assert "connection{channel=socketio,event=closed}=1" in rows[0][5]
    elif fault == "sessions-gauge-leak":
        assert len(rows) == 1 and rows[0][0] == "codesync_sessions_active"
        before, expected, observed = float(rows[0][2]), float(rows[0][3]), float(rows[0][4])
        assert (expected - before, observed - before) == (1.0, 2.0)  # 2 created, 1 deleted, never decremented
    elif fault == "label-drift":
        assert {(r[0], r[4], r[5]) for r in rows} == {
            ("codesync_http_requests_total", "path,status", "route,status_code"),
            ("codesync_http_request_duration_seconds", "path,status", "route,status_code"),
        }
    elif fault == "rate-limit-uncounted":
        assert [r[:4] for r in rows] == [("codesync_rate_limit_hits_total", "type=API", 1, "absent")]
        assert "rate_limited{limiter=search}=1" in rows[0][4]

    elif fault == "db-counter-frozen":
        # register + 2 sessions created + 1 deleted: 4 successful state-changing requests, each at
        # least one query; the frozen counter (and the histogram's count) never even appeared.
        assert [r[:4] for r in rows] == [
            ("codesync_db_queries_total", ">= 4 (1 x 4)", "absent", False),
            ("codesync_db_query_duration_seconds_count", ">= 4 (1 x 4)", "absent", False),
        ], symptom.render()
        # A counter excused from exact reconciliation is not excused from its lower bound, and the
        # other counters still agree exactly.
        assert results["counters-match-ledger"].verdict == "pass", results["counters-match-ledger"].render()

    if fault in GAUGE_LEAKS:
        # A leak is not a counting error: the counters still agree exactly.
        assert results["counters-match-ledger"].verdict == "pass", results["counters-match-ledger"].render()
        # Already during the load: the scrapes after the decrement that never came show one more
        # than the ledger had open then (the bounded peak check this replaced could not see it).
        plateau = results["gauges-reach-plateau"]
        assert plateau.verdict == "fail", plateau.render()
        metric, labels, observed, level = {
            "ws-gauge-leak": ("codesync_websocket_connections_active", "type=socketio", "1", "0"),
            "sessions-gauge-leak": ("codesync_sessions_active", "(no labels)", "2", "1"),
        }[fault]
        rows = _rows(plateau)
        assert {(r[0], r[1], r[3]) for r in rows} == {(metric, labels, observed)}, plateau.render()
        assert all(r[4].split(" ")[0] == level for r in rows), plateau.render()
        assert " scrapes wrong)" in rows[0][4]
    if fault == "ws-gauge-leak":
        done = cli(str(traffic.run_dir), "--prometheus-url", live.url, "--check", "gauges-re*", "--check", "counters-*")
        assert done.returncode == 1, done.stdout + done.stderr
        table = done.stdout.splitlines()
        assert any(line.startswith("gauges-return-to-baseline") and " FAIL " in line for line in table)
        assert any(line.startswith("counters-match-ledger") and " PASS " in line for line in table)
        assert "codesync_websocket_connections_active  type=socketio" in done.stdout


def test_traffic_right_after_the_first_scrape_after_the_load_is_not_counted(
    twin: TwinProcess, live_prom_for: Callable[[TwinProcess], LiveProm], tmp_path: Path
) -> None:
    # What a gate's next trial does: its first requests (here 5 GET /health) arrive just after the
    # first scrape that follows this run's last event. The window ends at that scrape, never at a
    # later one, so the exact count still holds with tolerance 0.
    from verify.windows import LoadWindow

    live = live_prom_for(twin)
    traffic = drive_known_traffic(twin.api_url, live.prom, tmp_path / "run")
    end = LoadWindow.from_ledger_file(traffic.run_dir / "ledger.json").end
    first = live.prom.first_scrape_after("codesync-backend", end, 30.0, 1.0)
    for _ in range(5):
        assert _get_status(twin.api_url + "/health") == 200
    live.prom.wait_for_scrape_since("codesync-backend", time.time(), 30.0)  # the next run's requests are scraped
    ctx = VerifyContext(VerifyOptions(run_dir=traffic.run_dir, prometheus_url=live.url))
    result = REGISTRY["counters-match-ledger"].run(ctx)
    assert result.verdict == "pass", result.render()
    assert ctx.after_at["codesync-backend"] == first
    assert ctx.before_at["codesync-backend"] < ctx.window.start


def _get_status(url: str) -> int:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status
