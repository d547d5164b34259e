"""The database-outage scenario end to end: `codesync-load run --scenario db-outage` on the twin.

A throwaway PostgreSQL cluster (never the machine's shared one) is stopped 10 s into a 40 s
load and started at 30 s; the stack runs at 30x (probes every 2 s for /health, 4 s for the
database port). Expectations, from the scenario's own record and the report:

- CodeSync's /health (the twin's default) answers 200 throughout: the uptime probe of /health
  never goes down, and uptime-agrees-with-users FAILS, naming "up while users failed";
- a fixed twin (--health-checks-db) takes the probe down at its 3rd failed try and the check passes;
- either way the users' first failing second is the stop's, the probe of the database port
  goes down at its 3rd failed try, and the report draws the timeline with a table;
- nothing is left behind: no cluster directory, no process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from codesync_load.stack.blackbox import RETRIES

REPO = Path(__file__).resolve().parents[2]
HEALTH_S, DATABASE_S = 2.0, 4.0  # the guide's 60 s and 120 s at --compress 30


def _cli(*args: str, timeout: float = 280.0) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "codesync_load.cli", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def _clusters() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("codesync-pg-*")}


def _scenario(tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess, dict, dict[str, dict]]:
    before = _clusters()
    run_dir = tmp_path / "run"
    result = _cli("run", "--profile", "outage", "--scenario", "db-outage", "--bcrypt-rounds", "4", "--run-dir",
                  str(run_dir), *extra)  # fmt: skip
    assert _clusters() == before, "the throwaway cluster's directory was left behind"
    doc = json.loads((run_dir / "witnesses.json").read_text())
    (incident,) = doc["incidents"]
    return result, doc, {row["witness"]: row for row in incident["witnesses"]}


def _common(doc: dict, rows: dict[str, dict]) -> float:
    incident = doc["incidents"][0]
    stopped, started = incident["stopped_at"], incident["started_at"]
    seen = json.dumps(incident, indent=1)  # every assertion shows the whole record
    assert 19.0 <= started - stopped <= 21.5, seen  # stopped at +10 s, started at +30 s of the load
    assert list(rows) == ["users", "metrics", "alerts", "uptime /health", "uptime database", "error events"]
    users = rows["users"]["first_notice"]
    assert stopped - 1.0 <= users <= stopped + 3.0, seen  # browsers ask every 1-2 s
    assert users - 1.0 <= rows["metrics"]["first_notice"] <= users + 3.5, seen  # the next 1 s scrape of the 5xx
    # the database port: down at the 3rd failed try, tries every 4 s (+2 s for a busy machine's scrape lag)
    down = rows["uptime database"]["first_notice"] - stopped
    assert (RETRIES - 1) * DATABASE_S <= down <= (RETRIES + 1) * DATABASE_S + 2.0, seen
    assert rows["uptime database"]["how"].startswith("down at the 3rd failed try"), seen
    # the error tracker received the 500s (the SDK stamps each event when the error happens)
    assert stopped <= rows["error events"]["first_notice"] <= users + 10.0, seen
    return stopped


def test_codesync_health_says_up_through_the_outage_and_the_check_fails(tmp_path: Path) -> None:
    result, doc, rows = _scenario(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr  # the users' 500s fail the load
    _common(doc, rows)
    assert rows["uptime /health"]["first_notice"] is None
    assert rows["uptime /health"]["how"].startswith("stayed up through ")
    check = doc["uptime_check"]
    assert (check["check"], check["verdict"]) == ("uptime-agrees-with-users", "FAIL")
    assert ": the probe said up while users failed (" in check["summary"]
    assert f"db-outage: uptime-agrees-with-users FAIL: {check['summary']}" in result.stdout

    report = _cli("report", str(tmp_path / "run"), "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr
    html = (tmp_path / "report" / "report.html").read_text()
    assert "Witnesses: who noticed each incident, and when" in html
    assert "<figure class='chart' id='run1-witnesses-1'><svg" in html
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "### Witnesses of the database outage (throwaway cluster 127.0.0.1:" in markdown
    assert "| uptime /health | never | stayed up through " in markdown
    again = _cli("report", str(tmp_path / "run"), "--out", str(tmp_path / "again"))
    assert again.returncode == 0
    assert (tmp_path / "again" / "report.html").read_bytes() == html.encode()


@pytest.mark.slow
def test_a_fixed_health_route_takes_the_probe_down_and_the_check_passes(tmp_path: Path) -> None:
    _, doc, rows = _scenario(tmp_path, "--health-checks-db")
    stopped = _common(doc, rows)
    noticed = rows["uptime /health"]["first_notice"] - stopped
    assert (RETRIES - 1) * HEALTH_S <= noticed <= (RETRIES + 1) * HEALTH_S + 2.0, json.dumps(doc, indent=1)
    assert (doc["uptime_check"]["check"], doc["uptime_check"]["verdict"]) == ("uptime-agrees-with-users", "PASS")


def test_outage_commands_without_the_scenario_are_one_line() -> None:
    result = _cli("run", "--db-stop-cmd", "true", "--db-start-cmd", "true", timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "codesync-load: error: --db-stop-cmd/--db-start-cmd belong to --scenario db-outage; add it or drop them"
    )


def test_a_fixed_health_route_is_only_for_a_twin_started_here() -> None:
    result = _cli("run", "--health-checks-db", "--api-url", "http://127.0.0.1:9", "--yjs-url", "ws://127.0.0.1:9",
                  timeout=60)  # fmt: skip
    assert (result.returncode, result.stderr.strip()) == (
        2,
        "codesync-load: error: --health-checks-db changes a twin this command starts, but the target is given "
        "(on api http://127.0.0.1:9, yjs ws://127.0.0.1:9); drop it",
    )


def test_a_given_target_needs_the_commands_that_stop_and_start_its_database() -> None:
    result = _cli("run", "--scenario", "db-outage", "--api-url", "http://127.0.0.1:9", "--yjs-url", "ws://127.0.0.1:9",
                  timeout=60)  # fmt: skip
    assert result.returncode == 2
    assert "needs --db-stop-cmd and --db-start-cmd" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_an_outside_codesyncs_database_is_stopped_and_started_by_the_given_commands(tmp_path: Path) -> None:
    """The external path: a CodeSync the harness did not start (a twin in a process of its own on
    a cluster run by `pg_ctl`, as an operator's would be), monitored by `stack up --api-url`,
    its database stopped and started by the shell commands given to `run`."""
    import os
    import pwd
    import shutil

    from codesync_load.pgcluster import postgres_bin
    from codesync_load.stack.local import LocalStack
    from codesync_load.stack.ports import free_port
    from codesync_load.twin_process import start_twin

    if os.geteuid() != 0:
        pytest.skip("the commands run pg_ctl as the postgres user through su, which needs root")
    pg = pwd.getpwnam("postgres")
    root = Path(tempfile.mkdtemp(prefix="codesync-pg-ext-"))
    shutil.chown(root, pg.pw_uid, pg.pw_gid)
    port, pg_ctl = free_port(), postgres_bin() / "pg_ctl"
    options = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={root}"
    as_postgres = "su postgres -s /bin/sh -c "
    start = as_postgres + f"\"{pg_ctl} -D {root}/data -o '{options}' -l {root}/log -w start\" >/dev/null"
    stop = as_postgres + f'"{pg_ctl} -D {root}/data -m fast -w stop" >/dev/null'
    subprocess.run(as_postgres + f'"{postgres_bin()}/initdb -D {root}/data -U postgres --auth=trust"', shell=True,
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    subprocess.run(start, shell=True, check=True, timeout=60)
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    twin = stack = None
    try:
        twin = start_twin(tmp_path / "twin", env={"DATABASE_URL": url, "METRICS_TOKEN": "tok"},
                          extra_args=["--bcrypt-rounds", "4"])  # fmt: skip
        stack = LocalStack(state_dir=tmp_path / "state", api_url=twin.api_url, yjs_url=twin.yjs_url,
                           metrics_token="tok", database_url=url, compress=30).up()  # fmt: skip
        result = _cli("run", "--profile", "outage", "--scenario", "db-outage", "--api-url", twin.api_url, "--yjs-url",
                      twin.yjs_url, "--metrics-token", "tok", "--prometheus-url", stack.prometheus_url, "--run-dir",
                      str(tmp_path / "run"), "--db-stop-cmd", stop, "--db-start-cmd", start)  # fmt: skip
        doc = json.loads((tmp_path / "run" / "witnesses.json").read_text())
        rows = {row["witness"]: row for row in doc["incidents"][0]["witnesses"]}
        assert doc["incidents"][0]["database"] == f"stopped by `{stop}`, started by `{start}`"
        stopped = doc["incidents"][0]["stopped_at"]
        assert stopped - 1.0 <= rows["users"]["first_notice"] <= stopped + 3.0, result.stdout
        assert rows["uptime /health"]["first_notice"] is None, result.stdout
        assert rows["uptime database"]["how"].startswith("down at the 3rd failed try (127.0.0.1:"), result.stdout
        assert (doc["uptime_check"]["verdict"], rows["error events"]["first_notice"]) == ("FAIL", None)
    finally:
        if stack is not None:
            stack.down()
        if twin is not None:
            twin.stop()
        subprocess.run(stop, shell=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)
