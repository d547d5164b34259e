"""`stack up|status|down` as a user runs them, and every bad input: one line, nothing left running."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from codesync_load.errors import HarnessError
from codesync_load.processes import stop_pid
from codesync_load.stack import open_stack
from codesync_load.stack.binaries import BINARIES_NOTE, find_binary
from codesync_load.stack.external import ExternalStack
from codesync_load.stack.local import BINARIES
from codesync_load.stack.ports import accepts_connections, free_port
from codesync_load.stack.render import MONITORING_DIR
from codesync_load.stack.state import pid_alive, read_state, state_path, write_state
from tests.conftest import as_if_in_a_terminal
from tests.stack._support import LOCAL_COMPONENTS, REPO, child_pids, run_cli, wait_for

COMPONENTS = LOCAL_COMPONENTS


def _ports(components: dict) -> list[int]:
    return [urlsplit(comp["url"]).port for comp in components.values() if comp.get("url")]


def _assert_nothing_left(components: dict, state_dir: Path) -> None:
    """Every recorded PID gone, every port refusing connections, no state file."""
    assert components, "nothing was recorded"
    alive = {name: c["pid"] for name, c in components.items() if pid_alive(c["pid"])}
    assert alive == {}
    listening = [port for port in _ports(components) if accepts_connections(port)]
    assert listening == []
    assert not state_path(state_dir).exists()


def test_cli_up_status_down_runs_detached_and_leaves_nothing(
    tmp_path: Path, pg_url: str, redis_url: str, redis_prefix: str
) -> None:
    up = run_cli(
        "stack", "up", "--state-dir", str(tmp_path), "--compress", "30", "--scrape-interval", "1s", "--json",
        "--database-url", pg_url, "--redis-url", redis_url, "--redis-prefix", redis_prefix,
    )  # fmt: skip
    assert up.returncode == 0, up.stderr
    record = read_state(tmp_path)
    components = record["components"]
    try:
        assert list(components) == COMPONENTS
        # The twin was given the database and Redis (and the exporter watches that database).
        assert (record["twin"]["storage"], record["twin"]["state"]) == ("postgresql", "redis")
        printed = json.loads(up.stdout)
        assert {name: c["pid"] for name, c in printed["components"].items()} == {
            name: c["pid"] for name, c in components.items()
        }
        # `up` has exited; its children keep running, detached.
        assert all(pid_alive(c["pid"], c["expected"]) for c in components.values())
        status = run_cli("stack", "status", "--json", "--state-dir", str(tmp_path))
        assert status.returncode == 0, status.stderr
        listed = json.loads(status.stdout)["components"]
        assert list(listed) == COMPONENTS
        for name, comp in listed.items():
            assert comp == {"url": components[name]["url"], "pid": components[name]["pid"], "alive": True}
        assert all(accepts_connections(port) for port in _ports(components))

        down = run_cli("stack", "down", "--state-dir", str(tmp_path))
        assert down.returncode == 0, down.stderr
        assert down.stdout.strip() == f"stopped local stack ({', '.join(COMPONENTS)})"
        _assert_nothing_left(components, tmp_path)
        again = run_cli("stack", "status", "--state-dir", str(tmp_path))
        assert again.returncode == 1
        assert again.stdout.strip() == "no stack is recorded; start one with: codesync-load stack up"
    finally:
        run_cli("stack", "down", "--state-dir", str(tmp_path))


def test_missing_binary_names_the_debian_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in BINARIES:
        if name != "prometheus":
            (bin_dir / name).symlink_to(find_binary(name))
    monkeypatch.setenv("PATH", str(bin_dir))
    before = child_pids()
    with pytest.raises(HarnessError) as err:
        open_stack("local", state_dir=tmp_path / "state").up()
    assert str(err.value) == f"prometheus not found on PATH; install with `apt-get install prometheus` {BINARIES_NOTE}"
    assert child_pids() == before
    assert not state_path(tmp_path / "state").exists()


def test_missing_binary_through_the_cli_is_one_line(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in BINARIES:
        if name != "prometheus-alertmanager":
            (bin_dir / name).symlink_to(find_binary(name))
    result = run_cli("stack", "up", "--state-dir", str(tmp_path / "state"), env={"PATH": str(bin_dir)})
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "codesync-load: error: prometheus-alertmanager not found on PATH; "
        f"install with `apt-get install prometheus-alertmanager` {BINARIES_NOTE}"
    ]


def test_a_fixed_port_in_use_is_refused_before_anything_starts(tmp_path: Path) -> None:
    before = child_pids()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(HarnessError) as err:
            open_stack("local", state_dir=tmp_path, ports={"prometheus": port}).up()
    assert str(err.value) == (
        f"prometheus port {port} on 127.0.0.1 is in use; stop what listens there "
        f"or drop --port prometheus={port} to get a free port"
    )
    assert child_pids() == before
    assert not state_path(tmp_path).exists()


def test_a_config_prometheus_rejects_gives_promtools_error_and_starts_nothing(tmp_path: Path) -> None:
    monitoring = tmp_path / "monitoring"
    shutil.copytree(MONITORING_DIR, monitoring)
    prom = monitoring / "prometheus.yml"
    prom.write_text(prom.read_text().replace("scrape_interval: 15s", "scrape_interval: 15s\n  scrape_timeout: 1x", 1))
    before = child_pids()
    with pytest.raises(HarnessError) as err:
        open_stack("local", state_dir=tmp_path / "state", monitoring_dir=monitoring).up()
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("Prometheus rejects the rendered config (")
    assert '"1x"' in message and "fix monitoring/prometheus.yml or its rule files" in message
    assert child_pids() == before
    assert not state_path(tmp_path / "state").exists()


def test_a_target_that_never_comes_up_is_named_with_its_last_error(tmp_path: Path) -> None:
    monitoring = tmp_path / "monitoring"
    shutil.copytree(MONITORING_DIR, monitoring)
    prom = monitoring / "prometheus.yml"
    text = prom.read_text()
    api_at = text.index("job_name: codesync-backend")
    prom.write_text(text[:api_at] + text[api_at:].replace("metrics_path: /metrics", "metrics_path: /no-metrics", 1))
    before = child_pids()
    stack = open_stack(
        "local", state_dir=tmp_path / "state", monitoring_dir=monitoring, scrape_interval="1s", ready_timeout=15
    )
    with pytest.raises(HarnessError) as err:
        stack.up()
    message = str(err.value)
    assert message.startswith(
        "Prometheus targets not up within 15 s (job codesync-backend: server returned HTTP status 404 Not Found); "
    )
    assert "codesync-yjs" not in message  # only the job that is down is named
    assert list(stack.components) == COMPONENTS  # everything had started ...
    _assert_nothing_left(stack.components, tmp_path / "state")  # ... and was stopped
    assert child_pids() == before


def test_a_process_that_dies_early_is_named_with_its_log_tail(tmp_path: Path) -> None:
    before = child_pids()
    stack = open_stack(
        "local",
        state_dir=tmp_path,
        database_url="postgresql://postgres@127.0.0.1:5432/codesync_stack_no_such_db",
    )
    with pytest.raises(HarnessError) as err:
        stack.up()
    message = str(err.value)
    assert message.startswith("twin exited with code 2 before listening: ")
    assert 'database "codesync_stack_no_such_db" does not exist' in message
    assert list(stack.components) == ["webhook", "tracker"]  # started before the twin, stopped after it failed
    _assert_nothing_left(stack.components, tmp_path)
    assert child_pids() == before


def test_an_exporter_that_dies_at_start_is_named_with_its_log_tail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in BINARIES:
        if name != "prometheus-node-exporter":
            (bin_dir / name).symlink_to(find_binary(name))
    broken = bin_dir / "prometheus-node-exporter"
    broken.write_text("#!/bin/sh\necho 'listen tcp: address already in use (simulated)'\nexit 3\n")
    broken.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.defpath}")
    before = child_pids()
    stack = open_stack("local", state_dir=tmp_path / "state")
    with pytest.raises(HarnessError) as err:
        stack.up()
    message = str(err.value)
    assert message.startswith("node-exporter exited with code 3 before answering at http://127.0.0.1:")
    assert "listen tcp: address already in use (simulated)" in message
    assert list(stack.components) == ["webhook", "tracker", "twin", "node-exporter"]
    _assert_nothing_left(stack.components, tmp_path / "state")
    assert child_pids() == before


def test_an_unknown_fault_is_one_line_before_anything_starts(tmp_path: Path) -> None:
    before = child_pids()
    with pytest.raises(HarnessError, match=r"^unknown fault 'no-such-fault'; run `codesync-load twin --list-faults`"):
        open_stack("local", state_dir=tmp_path, faults=["no-such-fault"]).up()
    assert child_pids() == before


def test_ctrl_c_during_up_stops_what_had_started(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "codesync_load.cli", "stack", "up", "--state-dir", str(tmp_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=as_if_in_a_terminal,
    )
    try:
        # Interrupt once the exporters run (the twin and the webhook are up by then).
        record = wait_for(
            lambda: (r := read_state(tmp_path)) and "node-exporter" in r["components"] and r, 60, "half-started stack"
        )
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    final = read_state(tmp_path)
    alive = {n: c["pid"] for n, c in {**record["components"], **((final or {}).get("components") or {})}.items()}
    alive = {n: pid for n, pid in alive.items() if pid_alive(pid)}
    for pid in alive.values():  # a failed interrupt must not leave the stack running
        stop_pid(pid)
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1] == "codesync-load: interrupted"
    assert {"webhook", "twin", "node-exporter"} <= set(record["components"])
    assert final is None
    assert alive == {}


def test_external_urls_that_do_not_answer_get_one_line_each(tmp_path: Path) -> None:
    api_port, prom_port = free_port(), free_port()
    stack = ExternalStack(
        api_url=f"http://127.0.0.1:{api_port}",
        prometheus_url=f"http://127.0.0.1:{prom_port}",
        state_dir=tmp_path,
    )
    with pytest.raises(HarnessError) as err:
        stack.up()
    assert str(err.value).splitlines() == [
        f"api at http://127.0.0.1:{api_port} is unreachable (Connection refused); start it or fix --api-url",
        f"prometheus at http://127.0.0.1:{prom_port} is unreachable (Connection refused); "
        "start it or fix --prometheus-url",
    ]
    assert not state_path(tmp_path).exists()


def test_external_without_urls_says_which_are_needed(tmp_path: Path) -> None:
    result = run_cli("stack", "up", "--backend", "external", "--state-dir", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "codesync-load: error: the external backend needs --api-url and --prometheus-url; pass the URL of each"
    ]


def test_down_without_a_stack_says_so(tmp_path: Path) -> None:
    result = run_cli("stack", "down", "--state-dir", str(tmp_path))
    assert (result.returncode, result.stdout.strip()) == (0, "no stack is recorded; nothing to stop")


def test_state_dir_defaults_to_the_environment_variable(tmp_path: Path) -> None:
    dead_pid = subprocess.Popen(["true"])
    dead_pid.wait()
    write_state(
        tmp_path,
        {
            "backend": "local",
            "state_dir": str(tmp_path),
            "components": {"twin": {"url": "http://127.0.0.1:9", "pid": dead_pid.pid, "expected": "codesync_load.cli"}},
        },
    )
    result = run_cli("stack", "status", "--json", env={"CODESYNC_STATE_DIR": str(tmp_path)})
    assert result.returncode == 1
    assert json.loads(result.stdout)["components"] == {
        "twin": {"url": "http://127.0.0.1:9", "pid": dead_pid.pid, "alive": False}
    }
    down = run_cli("stack", "down", env={"CODESYNC_STATE_DIR": str(tmp_path)})
    assert down.returncode == 0
    assert not state_path(tmp_path).exists()
