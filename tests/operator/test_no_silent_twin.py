"""With a stack record pointing at another target, no command starts a twin process.

The record names a CodeSync on ports where nothing listens (an outside deployment that is
down): every command must act on it, fail with one line naming it, and start no twin. A
command that silently fell back to the embedded twin would pass here only by lying.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codesync_load.stack.external import ExternalStack
from codesync_load.stack.ports import free_port
from codesync_load.stack.state import write_state
from tests.operator._support import cli


@pytest.fixture
def recorded_elsewhere(tmp_path: Path) -> tuple[Path, str, str]:
    """A state dir recording an external stack whose API and Yjs do not answer."""
    api, yjs = f"http://127.0.0.1:{free_port()}", f"ws://127.0.0.1:{free_port()}"
    stack = ExternalStack(
        api_url=api, yjs_url=yjs, prometheus_url=f"http://127.0.0.1:{free_port()}", state_dir=tmp_path
    )
    write_state(tmp_path / "state", {**stack.record(), "state_dir": str(tmp_path / "state")})
    return tmp_path / "state", api, yjs


def test_run_gate_and_verify_act_on_the_recorded_target_and_start_no_twin(
    recorded_elsewhere: tuple[Path, str, str], tmp_path: Path
) -> None:
    state, api, yjs = recorded_elsewhere
    run, twins_run = cli("run", "--profile", "smoke", "--run-dir", str(tmp_path / "r"), state=state, timeout=120)
    assert (run.returncode, twins_run) == (2, set()), run.stdout + run.stderr
    assert f"target api {api}, yjs {yjs}" in run.stdout
    assert f"target API {api} is unreachable" in run.stderr

    gate, twins_gate = cli("gate", "--profile", "ci", "--out", str(tmp_path / "g"), state=state, timeout=120)
    assert (gate.returncode, twins_gate) == (2, set()), gate.stdout + gate.stderr
    assert f"api at {api} is unreachable" in gate.stderr

    run_dir = tmp_path / "empty-run"
    run_dir.mkdir()
    (run_dir / "ledger.json").write_text(json.dumps({"meta": {}}))
    verify, twins_verify = cli(
        *("verify", str(run_dir), "--alert-scenarios", "--check", "alert-fires-HighErrorRate"),
        *("--prometheus-url", "http://127.0.0.1:9"),
        state=state,
        timeout=120,
    )
    assert twins_verify == set(), verify.stdout + verify.stderr
    last = verify.stdout.strip().splitlines()[-1]
    assert last.startswith(f"verify PASS on api {api}, yjs {yjs}"), verify.stdout + verify.stderr
    result = json.loads((run_dir / "verify" / "results.json").read_text())
    assert result["target"] == f"on api {api}, yjs {yjs}"
    assert [c["name"] for c in result["checks"]] == ["alert-fires-HighErrorRate"]
    assert "judged by promtool on generated series" in result["checks"][0]["summary"]


def test_gate_with_a_fault_on_a_recorded_target_is_refused_in_one_line(
    recorded_elsewhere: tuple[Path, str, str], tmp_path: Path
) -> None:
    state, api, yjs = recorded_elsewhere
    gate, twins = cli("gate", "--fault", "ws-gauge-leak", "--out", str(tmp_path / "g"), state=state, timeout=60)
    assert (gate.returncode, twins) == (2, set())
    assert gate.stderr.strip() == (
        f"codesync-load: error: --fault needs twins this command starts, but the target is api {api}, yjs {yjs}; "
        "drop it, or pass --twin to gate the embedded twin"
    )


def test_stack_down_on_an_external_record_says_nothing_was_stopped(recorded_elsewhere: tuple[Path, str, str]) -> None:
    state, _, _ = recorded_elsewhere
    down, _ = cli("stack", "down", state=state, timeout=60)
    assert down.returncode == 0, down.stderr
    assert down.stdout.strip() == (
        "forgot the external stack (api, yjs, prometheus); nothing was stopped: those services are not the harness's"
    )
    assert not (state / "stack.json").exists()


def test_gate_refuses_a_scrape_interval_it_cannot_apply_to_the_recorded_target(
    recorded_elsewhere: tuple[Path, str, str], tmp_path: Path
) -> None:
    """`gate --scrape-interval` sets the Prometheus the gate starts; against a recorded target
    it was silently ignored (the target's Prometheus kept its own interval). Now one line, before
    anything starts, naming why and the fix."""
    state, api, yjs = recorded_elsewhere
    prometheus = json.loads((state / "stack.json").read_text())["prometheus_url"]
    args = ("gate", "--profile", "ci", "--scrape-interval", "5s", "--out", str(tmp_path / "g"))
    gate, twins = cli(*args, state=state, timeout=120)
    assert (gate.returncode, twins) == (2, set()), gate.stdout + gate.stderr
    assert gate.stderr.strip() == (
        f"codesync-load: error: --scrape-interval sets the Prometheus this command starts, but the target is "
        f"api {api}, yjs {yjs} and the Prometheus at {prometheus} scrapes at the interval its prometheus.yml "
        "sets; drop --scrape-interval (or change that file), or pass --twin to gate the embedded twin"
    )
    assert not (tmp_path / "g").exists()
