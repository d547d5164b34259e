"""`codesync-load run`: one command, a run directory, its path as the last line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest
from _loadrun import REPO

from codesync_load.ledger import Ledger, read_status
from codesync_load.stack.ports import accepts_connections, free_port
from codesync_load.stack.state import pid_alive


def _cli(tmp_path: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["CODESYNC_STATE_DIR"] = str(tmp_path / "state")  # never pick up another stack of this machine
    env.pop("CODESYNC_DURATION_SCALE", None)
    return subprocess.run(
        [sys.executable, "-m", "codesync_load.cli", "run", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        start_new_session=True,
    )


def _refuses(url: str) -> bool:
    parts = urlsplit(url)
    return not accepts_connections(parts.port, parts.hostname, timeout=1)


def test_run_against_a_given_target_prints_the_run_dir_last(twin, tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "one"
    done = _cli(
        tmp_path,
        *("--profile", "smoke", "--duration-scale", "0.4", "--run-dir", str(run_dir)),
        *("--api-url", twin.api_url, "--yjs-url", twin.yjs_url),
        # a generated token may start with "-": it must reach Locust as a value, not an option
        "--metrics-token=-tok-with-a-leading-dash",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == str(run_dir.resolve())
    assert "ledger: complete" in done.stdout
    assert "unintended HTTP answers" not in done.stdout  # editors were invited: no refused autosave
    assert read_status(run_dir / "ledger.json") == (True, "")
    ledger = Ledger.read(run_dir / "ledger.json")
    assert ledger.meta["api_url"] == twin.api_url and ledger.meta["profile"] == "smoke"
    target = json.loads((run_dir / "target.json").read_text())
    label = f"on api {twin.api_url}, yjs {twin.yjs_url}"
    assert (target["api_url"], target["yjs_url"], target["source"], target["label"]) == (
        twin.api_url,
        twin.yjs_url,
        "options",
        label,
    )
    assert "metrics_token" not in target and "-tok-with-a-leading-dash" not in json.dumps(target)  # never written
    assert f"load smoke ran {label}: locust exit 0" in done.stdout  # the verdict line names the target
    for name in ("locust.json", "locust.html", "locust_stats.csv", "phases.json", "run.json"):
        assert (run_dir / name).is_file(), name


def test_run_starts_a_local_stack_and_stops_it(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    # Full-length smoke: the stack scrapes every 10 s, and a rate in the snapshot needs two
    # scrapes of series born in the load (at 0.4 the load was 7 s and HTTP rates came out empty).
    done = _cli(
        tmp_path, "--profile", "smoke", "--duration-scale", "1", "--bcrypt-rounds", "4", "--run-dir", str(run_dir)
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # the load started only after the stack's Prometheus had scraped the twin (else a warning)
    assert "warning: no scrape before the load" not in done.stderr, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == str(run_dir.resolve())
    ready = next(line for line in lines if line.startswith("local stack ready:"))
    urls = ready.split()[4::2]  # api URL, yjs URL, prometheus URL
    assert len(urls) == 3
    assert all(_refuses(url.replace("ws://", "http://")) for url in urls), "the stack was left running"
    assert read_status(run_dir / "ledger.json") == (True, "")
    assert not (tmp_path / "state" / "stack.json").exists()
    # the series the report draws were kept while the stack was up; the report reads them now
    # that it is gone, and misses nothing
    assert any(line.startswith("metrics snapshot: ") and " queries kept in " in line for line in lines), lines
    manifest = json.loads((run_dir / "snapshot" / "manifest.json").read_text())
    status = {q["name"]: q["status"] for q in manifest["queries"]}
    assert status["process_cpu"] == status["http_rps"] == status["panel:Request Rate#0"] == "ok", status
    assert len((run_dir / "generator.csv").read_text().splitlines()) >= 3  # header + per-second samples
    report = subprocess.run(
        [sys.executable, "-m", "codesync_load.cli", "report", str(run_dir)], cwd=REPO, capture_output=True, text=True
    )
    assert report.returncode == 0, report.stderr
    assert "Missing from this report" not in (run_dir / "report" / "report.html").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--profile", "nope"), "unknown profile 'nope'; choose one of: baseline"),
        (("--api-url", "http://127.0.0.1:1"), "--api-url and --yjs-url go together"),
        (("--duration-scale", "-1"), "--duration-scale -1.0 is not a positive number"),
        (("--processes", "-3"), "--processes -3 is negative"),
        (
            ("--api-url", "http://127.0.0.1:1", "--yjs-url", "ws://127.0.0.1:1", "--fault", "ws-gauge-leak"),
            "--fault switches faults on a twin this command starts",
        ),
    ],
)
def test_run_bad_input_is_one_line(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    run_dir = tmp_path / "run"
    done = _cli(tmp_path, "--run-dir", str(run_dir), *args, timeout=60)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not run_dir.exists()


def test_run_against_an_unreachable_target_is_one_line(tmp_path: Path) -> None:
    api, yjs = f"http://127.0.0.1:{free_port()}", f"ws://127.0.0.1:{free_port()}"
    run_dir = tmp_path / "run"
    done = _cli(tmp_path, "--api-url", api, "--yjs-url", yjs, "--run-dir", str(run_dir), timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith(f"codesync-load: error: target API {api} is unreachable")
    assert done.stderr.count("\n") == 1
    assert not run_dir.exists()


def test_a_run_stopped_at_its_time_limit_keeps_an_incomplete_ledger(twin, tmp_path: Path) -> None:
    """--timeout stops Locust (SIGTERM) mid-profile: the ledger says incomplete, and why."""
    run_dir = tmp_path / "run"
    done = _cli(
        tmp_path,
        *("--profile", "smoke", "--timeout", "6", "--run-dir", str(run_dir)),
        *("--api-url", twin.api_url, "--yjs-url", twin.yjs_url),
    )
    assert done.returncode == 1
    assert done.stdout.strip().splitlines()[-1] == str(run_dir.resolve())
    reason = "the run was stopped (SIGTERM) before its profile finished"
    assert f"ledger: INCOMPLETE ({reason})" in done.stdout
    assert read_status(run_dir / "ledger.json") == (False, reason)
    assert (run_dir / "locust.html").is_file() and (run_dir / "locust.json").is_file()  # Locust shut down normally
    ledger = Ledger.read(run_dir / "ledger.json")
    assert ledger.get("http", "POST", "/api/auth/login", 200) >= 1
    assert all(p.end is not None for p in ledger.phases)  # closed when Locust quit


def _descendants(pid: int) -> set[int]:
    """Every live process below `pid` (children in sessions of their own included)."""
    return {child.pid for child in psutil.Process(pid).children(recursive=True) if pid_alive(child.pid)}


def test_sigterm_during_a_run_stops_the_stack_it_started(tmp_path: Path) -> None:
    """CI's timeout sends SIGTERM: the run must stop every process of its stack, not die alone."""
    env = dict(os.environ, CODESYNC_STATE_DIR=str(tmp_path / "state"), PYTHONUNBUFFERED="1")
    env.pop("CODESYNC_DURATION_SCALE", None)
    argv = [sys.executable, "-m", "codesync_load.cli", "run", "--profile", "smoke", "--run-dir", str(tmp_path / "run")]
    proc = subprocess.Popen(
        argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        ready = ""
        for line in proc.stdout:  # the stack prints this line once every component answers
            if line.startswith("local stack ready:"):
                ready = line
                break
        assert ready, proc.stderr.read()
        started = _descendants(proc.pid)
        names = {Path(f"/proc/{pid}/comm").read_text().strip() for pid in started if pid_alive(pid)}
        assert "prometheus" in names, names  # the stack really was up when the signal came
        proc.send_signal(15)
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()
    assert proc.returncode == 143, out + err
    assert "stopped by SIGTERM" in err, err
    left = sorted(pid for pid in started if pid_alive(pid))
    assert left == [], f"left running after SIGTERM: {left}"
    urls = ready.split()[4::2]
    assert all(_refuses(url.replace("ws://", "http://")) for url in urls), "the stack was left running"
