"""In CI the gate tests fail, never skip, when a monitoring binary is missing (issue #12, item 7).

The gate is what CI runs; skipped there, its tests would report green over a gate that was
never exercised. Run as pytest child processes with an empty PATH, so `prometheus` is not
found (its Debian path /usr/bin/prometheus is not named prometheus-prometheus): with CI=true
the test fails naming the binary; without CI it is skipped with the same reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TARGET = "tests/gates/test_gate_command.py::test_bad_input_is_one_line_and_exit_2"


def pytest_child(ci: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PATH"] = ""  # no prometheus, alertmanager or promtool on PATH
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", TARGET, "-q", "-p", "no:cacheprovider", "-rfs"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_in_ci_a_missing_binary_fails_the_gate_tests() -> None:
    done = pytest_child("true")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "CI runs the gate, but prometheus is not installed" in done.stdout, done.stdout


def test_outside_ci_a_missing_binary_skips_them_with_the_reason() -> None:
    done = pytest_child(None)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 skipped" in done.stdout and "prometheus is not installed" in done.stdout, done.stdout
