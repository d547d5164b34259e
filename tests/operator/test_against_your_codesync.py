"""The operator's path against a CodeSync the harness did not start (README "Against your CodeSync").

The "CodeSync" here is a twin this test starts itself, as an outside process on ports of its
own (`codesync-load twin ...`), with METRICS_TOKEN set as an operator would; the monitoring
folder is the test's own (prometheus.yml in the compose style of CodeSync's monitoring/ with
service host names, a rules/ subfolder, no Yjs job), not the harness's monitoring/. Every
harness command runs as the operator runs it (`python -m codesync_load.cli ...`), and a
watcher asserts that none of them started a twin of its own: the verdicts are about the
outside process, or they are worthless.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from codesync_load.stack import promapi
from codesync_load.stack.ports import free_port
from tests.operator._support import cli
from verify.context import VerifyContext, VerifyOptions

REPO = Path(__file__).resolve().parents[2]
TOKEN = "operator-metrics-token"

PROMETHEUS_YML = """\
# As CodeSync's own monitoring folder writes it: compose service names, the guide's intervals.
global:
  scrape_interval: 15s
  evaluation_interval: 15s
rule_files:
  - rules/*.yml
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["alertmanager:9093"]
scrape_configs:
  - job_name: codesync-backend
    scrape_interval: 10s
    metrics_path: /metrics
    bearer_token_file: /etc/prometheus/metrics_token
    static_configs:
      - targets: ["backend:4000"]
  - job_name: node-exporter
    static_configs:
      - targets: ["node-exporter:9100"]
  - job_name: postgres-exporter
    static_configs:
      - targets: ["postgres-exporter:9187"]
  - job_name: redis-exporter
    static_configs:
      - targets: ["redis-exporter:9121"]
  - job_name: prometheus
    static_configs:
      - targets: ["localhost:9090"]
"""


def monitoring_folder(root: Path) -> Path:
    """The operator's folder: its own prometheus.yml and layout; rules and routes as CodeSync runs them."""
    folder = root / "codesync-monitoring"
    (folder / "rules").mkdir(parents=True)
    (folder / "prometheus.yml").write_text(PROMETHEUS_YML)
    shutil.copy(REPO / "monitoring" / "alerts.yml", folder / "rules" / "codesync.yml")
    shutil.copy(REPO / "monitoring" / "alertmanager.yml", folder / "alertmanager.yml")
    return folder


@dataclass
class Outside:
    api_url: str
    yjs_url: str
    proc: subprocess.Popen


@contextlib.contextmanager
def outside_twin(work: Path, *faults: str) -> Iterator[Outside]:
    """A twin as the operator's CodeSync: its own process, ports and token, stopped by PID."""
    api_port, yjs_port = free_port(), free_port()
    argv = [sys.executable, "-m", "codesync_load.cli", "twin", "--api-port", str(api_port)]
    argv += ["--yjs-port", str(yjs_port), "--bcrypt-rounds", "4", "--sqlite-path", str(work / "codesync.sqlite3")]
    for fault in faults:
        argv += ["--fault", fault]
    env = {**os.environ, "METRICS_TOKEN": TOKEN, "DATABASE_URL": "", "REDIS_URL": ""}
    log = (work / "codesync.log").open("w")
    proc = subprocess.Popen(argv, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if promapi.get(f"http://127.0.0.1:{api_port}/health", 1.0)[0] == 200:
                    break
            assert proc.poll() is None, (work / "codesync.log").read_text()[-2000:]
            time.sleep(0.2)
        yield Outside(f"http://127.0.0.1:{api_port}", f"ws://127.0.0.1:{yjs_port}", proc)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@contextlib.contextmanager
def silent_metrics_port() -> Iterator[int]:
    """A port that accepts connections and never answers: a /metrics that hangs."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


def assert_facts_come_from_the_running_prometheus(record: dict, folder: Path) -> None:
    """Scrape intervals, jobs and rule files from Prometheus' API; the folder's file compared with it."""
    url = record["prometheus_url"]
    live = VerifyContext(VerifyOptions(prometheus_url=url, live_facts=True))
    assert live.scrape_intervals["codesync-backend"] == live.scrape_intervals["codesync-yjs"] == 1.0
    assert live.describe("scrape_intervals") == f"{url}/api/v1/status/config"
    assert live.describe("rules").startswith(f"{url}/api/v1/rules (")
    assert "HighErrorRate" in {r.name for r in live.rules if r.kind == "alert"}
    given = VerifyOptions(prometheus_url=url, live_facts=True, explicit={"prometheus_config"})
    given.prometheus_config = folder / "prometheus.yml"
    differences = VerifyContext(given).config_differences()
    assert "job codesync-backend: scrape interval 10s in the file, 1s running" in differences
    assert f"job codesync-yjs: scraped by {url}, not in {folder / 'prometheus.yml'}" in differences
    assert "job node-exporter: scrape interval 15s in the file, 1s running" in differences


def test_monitoring_around_an_outside_codesync_names_rewrites_and_each_targets_health(tmp_path: Path) -> None:
    """stack up around a CodeSync whose Yjs /metrics never answers: the user's folder runs, each
    rewrite is listed, health after the first scrape names Prometheus' own error (how soon is
    measured by benchmarks/stack_up_around.py, not asserted here: timed tests flake);
    then metrics-token-enforced FAILs naming that page, and the other checks still run."""
    state = tmp_path / "state"
    folder = monitoring_folder(tmp_path)
    with outside_twin(tmp_path) as codesync, silent_metrics_port() as hung:
        yjs_url = f"ws://127.0.0.1:{hung}"
        up, twins = cli(
            *("stack", "up", "--api-url", codesync.api_url, "--yjs-url", yjs_url),
            *("--metrics-token", TOKEN, "--monitoring", str(folder)),
            state=state,
        )
        try:
            assert up.returncode == 0, up.stdout + up.stderr
            assert twins == set()
            out = up.stdout
            api_port = codesync.api_url.rsplit(":", 1)[1]
            assert f"job codesync-backend: backend:4000 -> 127.0.0.1:{api_port}" in out
            assert f"job codesync-yjs: backend:4000 -> 127.0.0.1:{hung}" in out  # the job the folder lacked
            assert "job codesync-backend bearer_token_file: /etc/prometheus/metrics_token -> " in out
            assert "rule_files: rules/*.yml -> 1 rendered copies (rules-codesync.yml)" in out
            assert "  codesync-backend up\n" in out
            assert "  codesync-yjs down: " in out and "context deadline exceeded" in out
            assert "twin" not in json.loads((state / "stack.json").read_text())["components"]

            status, twins = cli("stack", "status", state=state)
            assert status.returncode == 0, status.stdout + status.stderr
            assert_facts_come_from_the_running_prometheus(json.loads((state / "stack.json").read_text()), folder)

            # The live checks judge the target itself, not a load: an empty run directory serves
            # (a real load against a Yjs port that never answers would only wait out timeouts).
            run_dir = tmp_path / "run"
            run_dir.mkdir()
            (run_dir / "ledger.json").write_text('{"meta": {}}')
            verify, twins_verify = cli(
                *("verify", str(run_dir), "--live", "--check", "metrics-token-enforced", "--check", "csrf-enforced"),
                state=state,
            )
            assert twins_verify == set()
            lines = verify.stdout.splitlines()
            token_line = next(line for line in lines if line.startswith("metrics-token-enforced"))
            assert "FAIL" in token_line and f"GET http://127.0.0.1:{hung}/metrics gave no answer within 5 s" in (
                verify.stdout
            )
            assert next(line for line in lines if line.startswith("csrf-enforced")).split()[1] == "PASS"
            assert "Traceback" not in verify.stdout + verify.stderr and "TimeoutError" not in verify.stdout
            assert lines[-1].startswith(f"verify FAIL on api {codesync.api_url}, yjs {yjs_url}: 1 failed")
        finally:
            down, _ = cli("stack", "down", state=state)
        assert down.returncode == 0 and "stopped local stack" in down.stdout
        assert codesync.proc.poll() is None  # the operator's CodeSync is not the harness's to stop


# The ci gates' latency limits (gates/ci.toml) and the test's: CodeSync's own alert threshold,
# "p95 response time > 2 s". The healthy-vs-broken contrast below is a 20 % error burst, whose
# symptom is a count (error_rate, server-errors), not a timing margin; at the ci file's 250 ms
# the healthy verdict depended on the machine (p95 268 ms once at load average 15-38).
LATENCY_LIMITS = {
    '"p95(edit_propagation) < 250ms"': '"p95(edit_propagation) < 2s"',
    '"p95(chat_rtt) < 500ms"': '"p95(chat_rtt) < 2s"',
    '"p95(autosave_put) < 250ms"': '"p95(autosave_put) < 2s"',
    "})) < 500ms'": "})) < 2s'",  # the server-side autosave-put-p95
}


def ci_gates_with_latency_headroom(root: Path) -> Path:
    """gates/ci.toml with every latency limit at 2 s and everything else (the error and failure
    gates, the server gates, the checks) as the file has it."""
    text = (REPO / "gates" / "ci.toml").read_text()
    for old, new in LATENCY_LIMITS.items():
        assert text.count(old) == 1, f"gates/ci.toml no longer holds {old}: update LATENCY_LIMITS"
        text = text.replace(old, new)
    path = root / "ci-latency-headroom.toml"
    path.write_text(text)
    return path


def gate_verdicts(gate_dir: Path) -> dict[str, str]:
    """Gate name -> verdict, from gate.json."""
    return {g["name"]: g["verdict"] for g in json.loads((gate_dir / "gate.json").read_text())["gates"]}


@pytest.mark.slow
@pytest.mark.timeout(1500)  # two outside CodeSyncs, each: stack up, a ci gate, report, down
def test_operator_path_gates_a_healthy_and_a_broken_outside_codesync(tmp_path: Path) -> None:
    """The README's four commands: exit 0 on a healthy outside CodeSync, 1 on one with a fault;
    the report names the target; no command starts a twin. The gate is the ci profile with the
    ci gates, their latency limits at 2 s (LATENCY_LIMITS): the verdicts must not depend on how
    busy the machine is, and the fault's symptom is errors, judged exactly."""
    folder = monitoring_folder(tmp_path)
    gates = ci_gates_with_latency_headroom(tmp_path)
    for name, faults, expected in (("healthy", (), 0), ("broken", ("error-burst=0.2",), 1)):
        work = tmp_path / name
        work.mkdir()
        state = work / "state"
        with outside_twin(work, *faults) as codesync:
            up, twins_up = cli(
                *("stack", "up", "--api-url", codesync.api_url, "--yjs-url", codesync.yjs_url),
                *("--metrics-token", TOKEN, "--monitoring", str(folder)),
                state=state,
            )
            assert up.returncode == 0, up.stdout + up.stderr
            try:
                gate, twins_gate = cli(
                    *("gate", "--profile", "ci", "--gates", str(gates), "--out", str(work / "gate")), state=state
                )
                report, twins_report = cli("report", str(work / "gate"), state=state)
            finally:
                down, _ = cli("stack", "down", state=state)
            assert twins_up == twins_gate == twins_report == set()
            label = f"on api {codesync.api_url}, yjs {codesync.yjs_url}"
            last = gate.stdout.strip().splitlines()[-1]
            assert gate.returncode == expected, f"{name}: {last}\n{gate.stderr[-2000:]}"
            assert last.startswith(f"gate {'PASS' if expected == 0 else 'FAIL'} {label}"), last
            verdicts = gate_verdicts(work / "gate")
            failed = {g for g, v in verdicts.items() if v != "pass"}
            if expected:  # the burst's own symptom fails, exactly: 5xx answers counted by both sides
                assert {"gate: error_rate < 1%", "gate: server-errors"} <= failed, verdicts
                # No timing margin decided it: a p95 gate may fail only for having nothing to
                # measure (the burst's 500s met the editors' set-up, so no edit was timed), never
                # on a measured value over its limit.
                gates_doc = json.loads((work / "gate" / "gate.json").read_text())["gates"]
                summaries = {g["name"]: g["summary"] for g in gates_doc}
                timed = {g: summaries[g] for g in failed if "p95" in g and "= no data," not in summaries[g]}
                assert not timed, timed
            else:
                assert failed == set(), verdicts
            assert report.returncode == 0, report.stderr
            doc = json.loads((work / "gate" / "report" / "report.json").read_text())
            assert doc["title"] == f"codesync-load report: gate {label}"
            assert json.loads((work / "gate" / "gate.json").read_text())["target"]["twin"] is False
            assert down.returncode == 0
