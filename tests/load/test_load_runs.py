"""Headless Locust runs against a real twin: exact ledgers, distributed merge, killed runs.

Every run is a child process (Locust must not be imported by pytest), bounded in time and
stopped by PID. Durations are scaled down and user counts capped: the machine has 2 cores.

The smoke run, the short runs of every other profile and the stress run go three at a time
(one module fixture, each run on a twin of its own with its own run directory): a paced
Locust run mostly waits, so three share the cores without any count changing, and each
twin's metrics are that run's alone; each test then judges its own run.
"""

from __future__ import annotations

import json
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from _loadrun import (
    LOADTESTS,
    OwnTwinRun,
    locust_argv,
    reconcile,
    run_locust,
    run_on_own_twin,
    scrape,
    settled,
    start,
    wait_exit,
    wait_for,
)

from codesync_load.ledger import Ledger, read_status
from codesync_load.stack.ports import free_port
from scenarios.profiles import load_profile


def _assert_run_dir(run_dir: Path, stages: list[str]) -> Ledger:
    for name in ("ledger.json", "phases.json", "run.json", "locust.json", "locust.html"):
        assert (run_dir / name).is_file(), f"{name} missing from the run directory"
    complete, reason = read_status(run_dir / "ledger.json")
    assert complete, reason
    ledger = Ledger.read(run_dir / "ledger.json")
    assert [p.name for p in ledger.phases] == [*stages, "drain"]
    assert all(p.end is not None and p.end >= p.start for p in ledger.phases)
    phases = json.loads((run_dir / "phases.json").read_text())
    assert [p["name"] for p in phases] == [*stages, "drain"]
    locust_stats = json.loads((run_dir / "locust.json").read_text())
    assert any(entry["name"] == "/api/auth/register" for entry in locust_stats)
    return ledger


def test_smoke_run_ledger_equals_twin_metric_deltas(short_runs: dict) -> None:
    """The CI smoke run: every ledger count equals what the twin's /metrics moved by."""
    run = _own_run(short_runs, "smoke")
    assert run.result.code == 0, run.result.output[-3000:]
    ledger = _assert_run_dir(run.run_dir, ["ramp", "steady"])
    assert run.metrics is not None
    api, yjs = run.metrics
    assert reconcile(ledger, api, yjs) == []
    # the smoke profile exercised every user kind and every channel
    assert ledger.get("http", "POST", "/api/auth/register", 201) >= 5
    assert ledger.get("http", "PUT", "/api/sessions/:id/files/:path/content", 200) >= 1
    assert ledger.get("connection", "socketio", "opened") == ledger.get("connection", "socketio", "closed") >= 3
    assert ledger.get("connection", "yjs", "opened") == ledger.get("connection", "yjs", "closed") >= 3
    assert ledger.get("session", "created") == ledger.get("session", "deleted") >= 2
    assert ledger.get("yjs_update", "sent") > 0
    assert ledger.get("yjs_update", "echo") == ledger.get("yjs_update", "sent")
    assert len(ledger.samples("yjs_propagation_s")) > 0
    assert {r["check"] for r in ledger.results} >= {"convergence", "durability"}
    assert all(r["ok"] for r in ledger.results), ledger.results
    assert ledger.total("failure") == 0 and ledger.total("rate_limited") == 0
    # editors became participants the product's way: one invitation and one accept each
    # (the session's creator owns it and needs neither), so no write was refused
    invited = ledger.get("http", "POST", "/api/invitations", 201)
    assert invited == ledger.get("http", "POST", "/api/invitations/accept/:token", 200) >= 1
    assert ledger.total("unexpected") == 0 and ledger.total("http", status=403) == 0


def test_master_and_two_workers_merge_to_the_twin_counts(twin, tmp_path: Path) -> None:
    """Locust's own distribution: a master and 2 worker processes; the merged ledger is exact."""
    api0, yjs0 = scrape(twin.api_url), scrape(twin.yjs_url)
    run_dir = tmp_path / "run"
    port = free_port()
    common = ["--profile", "smoke", "--duration-scale", "0.6"]
    master = start(
        [
            *locust_argv(twin, run_dir, *common),
            "--master",
            "--expect-workers",
            "2",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(port),
        ],
        tmp_path / "master.out",
        name="locust-master",
    )
    workers = []
    try:
        for i in range(2):
            argv = [
                *locust_argv(twin, tmp_path / f"unused{i}", *common),
                "--worker",
                "--master-host",
                "127.0.0.1",
                "--master-port",
                str(port),
            ]
            workers.append(start(argv, tmp_path / f"worker{i}.out", name=f"locust-worker{i}"))
        result = wait_exit(master, 150)
        for worker in workers:
            wait_exit(worker, 30)
    finally:
        for proc in (master, *workers):
            proc.stop(grace=5)
    assert result.code == 0, result.output[-3000:]
    ledger = _assert_run_dir(run_dir, ["ramp", "steady"])
    assert len(ledger.workers) == 2 and all(w["final"] for w in ledger.workers.values()), ledger.workers
    api1, yjs1 = settled(twin)
    assert reconcile(ledger, (api0, api1), (yjs0, yjs1)) == []
    assert ledger.get("connection", "yjs", "opened") >= 3
    assert not (tmp_path / "unused0").exists()  # workers never write a run directory


def test_processes_mode_merges_exactly(twin, tmp_path: Path) -> None:
    """`--processes 2` (Locust forks its workers) gives the same exact ledger."""
    api0, yjs0 = scrape(twin.api_url), scrape(twin.yjs_url)
    run_dir = tmp_path / "run"
    argv = locust_argv(twin, run_dir, "--profile", "smoke", "--duration-scale", "0.5", "--processes", "2")
    result = run_locust(argv, tmp_path / "locust.out", 150)
    assert result.code == 0, result.output[-3000:]
    ledger = _assert_run_dir(run_dir, ["ramp", "steady"])
    assert len(ledger.workers) == 2
    api1, yjs1 = settled(twin)
    assert reconcile(ledger, (api0, api1), (yjs0, yjs1)) == []


def test_a_killed_run_leaves_a_readable_incomplete_ledger(twin, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    argv = locust_argv(
        twin, run_dir, "--profile", "soak", "--duration-scale", "0.01", "--max-users", "3", "--ledger-flush", "0.2"
    )
    proc = start(argv, tmp_path / "locust.out")
    try:
        ledger_file = run_dir / "ledger.json"

        def some_traffic() -> bool:
            try:
                return Ledger.read(ledger_file).get("http", "POST", "/api/auth/login", 200) >= 3
            except Exception:
                return False

        wait_for(some_traffic, 60, "the run to log users in and flush its ledger")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.popen.wait(10)
    finally:
        proc.stop(grace=2)
    complete, reason = read_status(run_dir / "ledger.json")
    assert not complete and "killed" in reason
    ledger = Ledger.read(run_dir / "ledger.json")
    assert ledger.get("http", "POST", "/api/auth/login", 200) >= 3
    assert ledger.phases and ledger.phases[-1].end is None  # the phase it died in stays open
    assert ledger.meta["profile"] == "soak"


LONG_OR_BIG = {
    # profile: (duration scale, expected stage names)
    "baseline": (0.03, ["ramp", "steady"]),
    "spike": (0.08, ["before", "spike", "recovery"]),
    "capacity": (0.02, [f"step-{i}" for i in range(1, 11)]),
    "ci": (0.3, ["ramp", "steady"]),
    "soak": (0.0015, ["ramp", "hold"]),
}
STRESS_ARGS = ("--profile", "stress", "--duration-scale", "0.1", "--max-users", "4")
# run -> (Locust arguments, timeout s, settle), longest first (~21, 15, 15, 15, 13, 12, 12 s alone).
# Every run settles: each profile's ledger is reconciled against its own twin's counters.
SHORT_RUNS = {
    "stress": (STRESS_ARGS, 150, True),
    "smoke": (("--profile", "smoke", "--duration-scale", "0.6"), 120, True),
    **{
        name: (("--profile", name, "--duration-scale", str(LONG_OR_BIG[name][0]), "--max-users", "4"), 120, True)
        for name in ("soak", "capacity", "spike", "baseline", "ci")
    },
}
PARALLEL = 3


@pytest.fixture(scope="module")
def short_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, OwnTwinRun | str]:
    """run -> its OwnTwinRun, or why the run itself broke (that run's test fails with it)."""
    work = {name: tmp_path_factory.mktemp(name) for name in SHORT_RUNS}

    def one(name: str) -> tuple[str, OwnTwinRun | str]:
        args, timeout, settle = SHORT_RUNS[name]
        try:
            return name, run_on_own_twin(work[name], *args, timeout=timeout, settle=settle)
        except Exception as err:  # a run that overran or a twin that did not start
            return name, f"{name}: {type(err).__name__}: {err}"

    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        return dict(pool.map(one, SHORT_RUNS))


def _own_run(short_runs: dict[str, OwnTwinRun | str], name: str) -> OwnTwinRun:
    run = short_runs[name]
    assert not isinstance(run, str), run
    return run


@pytest.mark.parametrize("name", sorted(LONG_OR_BIG))
def test_every_profile_runs_short_and_headless(short_runs: dict, name: str) -> None:
    scale, stages = LONG_OR_BIG[name]
    profile = load_profile(name, duration_scale=scale)
    assert profile.total_duration <= 15
    run = _own_run(short_runs, name)
    result = run.result
    ledger = _assert_run_dir(run.run_dir, stages)
    assert ledger.meta["crosses_rate_limits"] is profile.crosses_rate_limits
    assert ledger.meta["duration_scale"] == pytest.approx(scale)
    assert ledger.get("http", "GET", "/health", 200) >= 1
    # every count of the ledger is what the run's own twin counted (as for smoke and stress)
    assert run.metrics is not None
    assert reconcile(ledger, *run.metrics) == []
    assert ledger.total("http") > ledger.get("http", "GET", "/health", 200)  # the profile's users did work
    # against a correct server no answer the load model did not intend (stress means its 429s)
    assert ledger.entries("unexpected") == []
    if not profile.crosses_rate_limits:
        assert ledger.total("rate_limited") == 0
        assert result.code == 0, result.output[-3000:]


def _group_members(pgid: int) -> list[int]:
    """PIDs still alive in process group `pgid` (zombies excluded)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
            except OSError:
                continue
            if fields[0] != "Z" and fields[2] == str(pgid):
                alive.append(int(entry.name))
    return alive


@pytest.mark.parametrize("processes", [0, 2])
def test_unreachable_target_ends_at_once_with_one_line(tmp_path: Path, processes: int) -> None:
    class Dead:
        api_url = f"http://127.0.0.1:{free_port()}"
        yjs_url = f"ws://127.0.0.1:{free_port()}"

    run_dir = tmp_path / "run"
    extra = ["--processes", str(processes)] if processes else []
    proc = start(locust_argv(Dead, run_dir, "--profile", "smoke", *extra), tmp_path / "out")
    try:
        code = proc.popen.wait(30)
        # forked workers must not outlive a master that refused to start
        wait_for(lambda: not _group_members(proc.pid), 10, "the forked workers to exit")
    finally:
        proc.stop(grace=2)
    output = (tmp_path / "out").read_text()
    assert code == 2
    lines = [line for line in output.splitlines() if line.startswith("codesync-load: error:")]
    assert len(lines) == 1 and f"target API {Dead.api_url}/health is unreachable" in lines[0]
    assert "codesync-load stack up" in lines[0]
    assert "Traceback" not in output
    assert not (run_dir / "ledger.json").exists()


def test_bad_profile_name_and_invalid_file_end_at_once(twin, tmp_path: Path) -> None:
    result = run_locust(locust_argv(twin, tmp_path / "a", "--profile", "smok"), tmp_path / "a.out", 60)
    assert result.code == 2
    assert (
        "codesync-load: error: unknown profile 'smok'; choose one of: baseline, capacity, ci, outage, smoke, "
        "soak, spike, stress (or pass a path to a .toml file)"
    ) in result.output
    bad = tmp_path / "broken.toml"
    bad.write_text(
        (LOADTESTS.parent / "scenarios" / "profiles" / "smoke.toml")
        .read_text()
        .replace("smoke", "broken")
        .replace("participants = 3", 'participants = "many"')
    )
    result = run_locust(locust_argv(twin, tmp_path / "b", "--profile", str(bad)), tmp_path / "b.out", 60)
    assert result.code == 2
    assert f"codesync-load: error: profile {bad}: [sessions] participants = 'many' must be an integer" in result.output
    for output in (tmp_path / "a.out", tmp_path / "b.out"):
        assert "Traceback" not in output.read_text()
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_locust_loads_the_directory_cleanly(tmp_path: Path) -> None:
    """`locust -f loadtests --list`: helper modules are not locustfiles, no duplicate classes."""
    result = run_locust(
        [
            *locust_argv(type("T", (), {"api_url": "http://127.0.0.1:1", "yjs_url": "ws://127.0.0.1:1"}), tmp_path),
            "--list",
        ],
        tmp_path / "out",
        60,
    )
    assert result.code == 0, result.output
    listed = [line.strip() for line in result.output.splitlines() if line.startswith("    ")]
    assert sorted(listed) == ["BrowserUser", "EditorUser", "OnboardingUser", "ViewerUser"]


def test_stress_crosses_the_limits_and_counts_every_429(short_runs: dict) -> None:
    """The profile that says it crosses the limits meets 429s; each is in the ledger, by limiter."""
    run = _own_run(short_runs, "stress")
    result = run.result
    assert result.code == 0, result.output[-3000:]  # 429s are expected here, not failures
    ledger = _assert_run_dir(run.run_dir, ["ramp", "overload"])
    assert ledger.meta["crosses_rate_limits"] is True
    limited = ledger.get("rate_limited", "files") + ledger.get("rate_limited", "search")
    assert limited > 0
    assert limited == ledger.total("http", status=429) == ledger.get("error", "http", "RATE_LIMIT")
    assert ledger.entries("unexpected") == []  # the 429s were meant; nothing else was refused
    assert run.metrics is not None  # settled once every connection closed
    assert reconcile(ledger, *run.metrics) == []


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("CODESYNC_SLOW") != "1", reason="150 users twice (~60 s of 2 cores); CODESYNC_SLOW=1"
)
def test_stress_at_full_size_meets_the_yjs_limit_and_stays_exact(twin, tmp_path: Path) -> None:
    """Two stress runs within a minute from one address: Yjs refuses with 1008 past 100
    connections; every refusal and every message is still exactly what the twin counted."""
    for attempt in range(2):
        api0, yjs0 = settled(twin)
        run_dir = tmp_path / f"run{attempt}"
        argv = locust_argv(twin, run_dir, "--profile", "stress", "--duration-scale", "0.08")
        run_locust(argv, tmp_path / f"locust{attempt}.out", 240)
        ledger = _assert_run_dir(run_dir, ["ramp", "overload"])
        api1, yjs1 = settled(twin)
        assert reconcile(ledger, (api0, api1), (yjs0, yjs1)) == []
    refused = ledger.get("connection", "yjs", "refused")
    assert refused > 0
    assert ledger.get("rate_limited", "yjs") == ledger.get("error", "yjs", "RATE_LIMIT") == refused
