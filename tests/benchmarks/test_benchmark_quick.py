"""The load-generator benchmark end to end: `--quick` against the upstream server and the twin.

A functional test of the script, not a timing assertion: every measure must come back from
real child processes with positive numbers, the idle phases must hold exactly what they
asked for, and each ratio in the table must be the one computed from its two numbers.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import as_if_in_a_terminal

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "load_generator.py"
QUICK_IDLE = 100  # the --quick idle count

EXPECTED_ROWS = {
    (target, measure)
    for target in ("upstream", "twin")
    for measure in (
        "Yjs updates sent/s (LeanYjsConnection)",
        "Yjs updates applied/s (LeanYjsConnection)",
        "Yjs updates sent/s (YjsClient)",
        "Yjs updates applied/s (YjsClient)",
        "Yjs updates sent per client CPU-second (LeanYjsConnection)",
        "Yjs updates sent per client CPU-second (YjsClient)",
        "Yjs updates sent/s (LeanYjsConnection, no bookkeeping)",
        "Yjs updates applied/s (LeanYjsConnection, no bookkeeping)",
        "Yjs updates sent per client CPU-second (LeanYjsConnection, no bookkeeping)",
        "idle synced connections held (LeanYjsConnection, one user each)",
        "idle KB per connection (LeanYjsConnection, one user each)",
        "idle synced connections held (LeanYjsConnection, 100 per user)",
        "idle KB per connection (LeanYjsConnection, 100 per user)",
        "idle KB per connection (YjsClient, one user each, 20 connections)",
    )
} | {
    ("twin", "REST GET /health requests/s (RestClient vs FastHttpUser)"),
    ("twin", "REST requests per client CPU-second (RestClient vs FastHttpUser)"),
}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


@pytest.fixture(scope="module")
def quick_record(tmp_path_factory: pytest.TempPathFactory) -> dict:
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the benchmark's upstream target needs it")
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=360,
        env=_env(),
        cwd=ROOT,
    )
    assert done.returncode == 0, (done.stdout[-1500:], done.stderr[-1500:])
    assert out.with_suffix(".md").exists()
    assert "REST GET /health" in done.stdout  # the table was printed
    return json.loads(out.read_text())


@pytest.mark.timeout(420)
def test_quick_run_measures_every_phase_with_positive_numbers(quick_record: dict) -> None:
    results = quick_record["results"]
    assert set(results) == {"upstream", "twin"}
    for target, measures in results.items():
        for client in ("raw", "locust_lean", "locust_lean_bare", "locust_yjsclient"):
            tp = measures["throughput"][client]
            assert "error" not in tp, (target, client, tp)
            assert tp["editors"] == 10 and tp["lost"] == 0
            assert tp["sent"] > 0 and tp["applied"] > 0 and tp["echoes"] > 0
            assert tp["sent_per_s"] == pytest.approx(tp["sent"] / tp["seconds"])
            assert tp["applied_per_s"] == pytest.approx(tp["applied"] / tp["seconds"])
            assert 0 < tp["cpu_share"] < 2.5  # one process: at most one core, plus helper threads
            if client == "locust_lean_bare":
                assert tp["latency_samples"] == tp["ledger_samples"] == tp["locust_samples"] == 0  # no observers
            elif client != "raw":
                # opened as the Locust users open them: every applied keystroke of an editor of
                # the same process is one latency sample, and the ledger got every sample, and
                # so did Locust's statistics (batched, but every one of them counted)
                assert tp["latency_samples"] == tp["applied"], (target, client, tp)
                assert tp["ledger_samples"] >= tp["latency_samples"]
                assert tp["locust_samples"] == tp["ledger_samples"], (target, client, tp)
        idle = measures["idle"]
        clients = (("raw", QUICK_IDLE), ("locust_lean_users", QUICK_IDLE), ("locust_lean", QUICK_IDLE))
        for client, count in (*clients, ("locust_yjsclient", 20)):
            record = idle[client]
            assert "error" not in record, (target, client, record)
            assert record["requested"] == record["synced"] == record["held"] == count
            assert record.get("updates_sent", 0) == 0  # idle means idle: no viewer typed
            assert record["rss_after_kb"] > record["rss_before_kb"] > 0
            assert record["kb_per_connection"] == pytest.approx(
                (record["rss_after_kb"] - record["rss_before_kb"]) / count
            )
    assert "rest" not in results["upstream"]  # upstream has no REST API
    for client in ("plain", "codesync"):
        rest = results["twin"]["rest"][client]
        assert "error" not in rest, (client, rest)
        assert rest["requests"] > 0 and rest["failed"] == 0
        assert rest["requests_per_s"] == pytest.approx(rest["requests"] / rest["seconds"])


@pytest.mark.timeout(420)
def test_quick_run_table_ratios_come_from_the_numbers(quick_record: dict) -> None:
    rows = quick_record["rows"]
    assert {(row["target"], row["measure"]) for row in rows} == EXPECTED_ROWS
    assert len(rows) == len(EXPECTED_ROWS)
    for row in rows:
        assert row["raw"] > 0 and row["locust"] > 0, row
        assert math.isclose(row["ratio"], row["locust"] / row["raw"]), row
        assert row["met"] in ("yes", "no", "n/a"), row
    twin = quick_record["results"]["twin"]
    by_name = {(row["target"], row["measure"]): row for row in rows}
    sent = by_name[("twin", "Yjs updates sent/s (LeanYjsConnection)")]
    assert sent["raw"] == twin["throughput"]["raw"]["sent_per_s"]
    assert sent["locust"] == twin["throughput"]["locust_lean"]["sent_per_s"]
    rest = by_name[("twin", "REST GET /health requests/s (RestClient vs FastHttpUser)")]
    assert rest["raw"] == twin["rest"]["plain"]["requests_per_s"]
    assert rest["locust"] == twin["rest"]["codesync"]["requests_per_s"]
    # 100 connections are not the 10,000: the count target is not judged in quick mode
    assert by_name[("twin", "idle synced connections held (LeanYjsConnection, one user each)")]["met"] == "n/a"
    assert twin["idle"]["locust_lean"]["per_user"] == 100 and twin["idle"]["locust_lean_users"]["per_user"] == 1
    assert quick_record["config"]["max_length"] is None  # insert-only keystrokes unless asked
    machine = quick_record["machine"]
    assert machine["nproc"] >= 1 and machine["ram_gib"] > 0 and machine["cpu_model"]


def test_bad_arguments_give_one_line_and_exit_2() -> None:
    for args, needle in (
        (["--targets", "nginx"], "unknown target 'nginx'"),
        (["--duration", "0"], "--duration must be a positive number"),
        (["--idle", "0"], "--idle must be at least 1"),
        (["--max-length", "0"], "--max-length must be at least 1 character"),
    ):
        done = subprocess.run(
            [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60, env=_env(), cwd=ROOT
        )
        assert done.returncode == 2, (args, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], (args, done.stderr)
        assert "Traceback" not in done.stderr


def test_ctrl_c_stops_the_targets_by_pid(tmp_path: Path) -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the benchmark's upstream target needs it")
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path / "q.json")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=ROOT,
        preexec_fn=as_if_in_a_terminal,
    )
    try:
        pids: dict[str, int] = {}
        assert proc.stdout is not None
        for line in proc.stdout:
            if " pid " in line:
                name, _, pid, _url = line.split()
                pids[name.strip("[]")] = int(pid)
            if "Yjs throughput" in line:  # both targets up, the first phase running
                break
        assert set(pids) == {"upstream", "twin"}
        assert all(Path(f"/proc/{pid}").exists() for pid in pids.values())
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            # the benchmark did not stop its targets: stop them here so a failure leaks nothing
            for pid in pids.values():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "interrupted: targets and clients stopped"
    assert "Traceback" not in err
    for name, pid in pids.items():
        assert not Path(f"/proc/{pid}").exists(), f"{name} (pid {pid}) still runs"
    assert not (tmp_path / "q.json").exists()


def test_idle_count_beyond_the_fd_limit_is_refused_before_anything_starts() -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        pytest.skip("no hard descriptor limit on this machine")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--idle", str(hard)],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
        cwd=ROOT,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        f"error: --idle {hard} needs about {hard + 256} file descriptors but the hard limit is {hard}; "
        "raise it (ulimit -Hn, /etc/security/limits.conf) or lower --idle"
    )
    assert "pid" not in done.stdout  # refused before any target was started
