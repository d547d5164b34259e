"""A capacity answer that can be checked: a short step run against a twin whose request handling
follows a known USL curve (twin/service_model.py), and the fit must recover it.

Tolerances (stated in the README with what this machine gave): sigma within ±0.05 absolute,
kappa within a factor of 2, N* within ±20 %. The model's base cost is 250 ms so that the
twin's own CPU time per request (a few ms, more on a loaded machine) stays a small share of
each response: the curve measured is the model's, not the machine's.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "tests" / "fixtures" / "profiles" / "capacity-usl.toml"
SIGMA, KAPPA, BASE_MS = 0.05, 0.002, 250
MODEL = f"usl:sigma={SIGMA},kappa={KAPPA},base_ms={BASE_MS}"


# slow: the 80 s run needs the twin to have its CPU. Alone on this machine it recovered sigma
# 0.0509, kappa 0.00178, N* 23.1 (true 21.8); run beside other suites at load average 30, the
# CPU-starved twin capped throughput itself and the fit saw contention, not coherency (sigma
# 0.11, kappa 0): a fact about the machine that this test cannot tell from a wrong fit.
@pytest.mark.slow
def test_a_short_capacity_run_recovers_the_twins_usl_coefficients(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory(extra_args=["--service-model", MODEL])
    run_dir = tmp_path / "cap"
    done = subprocess.run(
        [sys.executable, "-m", "codesync_load.cli", "capacity", "--profile", str(PROFILE),
         "--api-url", twin.api_url, "--yjs-url", twin.yjs_url, "--bcrypt-rounds", "4",
         "--run-dir", str(run_dir), "--target-editors", "10000"],
        cwd=REPO, capture_output=True, text=True, timeout=400,
        env={**os.environ, "CODESYNC_STATE_DIR": str(tmp_path / "state")},
    )  # fmt: skip
    # partial (exit 1) only because a bare twin has no Prometheus: no snapshot, no regressions
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    partial = [line for line in done.stdout.splitlines() if line.startswith("partial: ")]
    assert len(partial) == 2 and all("snapshot" in line for line in partial), partial
    assert done.stdout.strip().splitlines()[-1] == str(run_dir / "capacity" / "capacity.html")
    result = json.loads((run_dir / "capacity" / "capacity.json").read_text())
    fit = result["usl"]
    truth = math.sqrt((1 - SIGMA) / KAPPA)
    report = f"fit sigma {fit['sigma']:.4f} kappa {fit['kappa']:.5f} N* {fit['n_star']:.1f} (truth {truth:.1f})"
    print(report)
    assert [s["users"] for s in result["steps"]] == [2, 6, 10, 14, 18, 22, 26, 30]
    assert all(s["excluded"] == "" for s in result["steps"]), result["steps"]
    assert abs(fit["sigma"] - SIGMA) <= 0.05, report
    assert KAPPA / 2 <= fit["kappa"] <= KAPPA * 2, report
    assert abs(fit["n_star"] - truth) <= 0.2 * truth, report
    # browsing users only: no editor to plan for, and the projection says so instead of guessing
    projection = result["projection"]
    assert projection["instances"] is None and "no editors" in projection["problem"]
    assert any("sticky sessions" in a for a in projection["assumptions"])
