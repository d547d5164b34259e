"""`codesync-load capacity` on bad input: one line each, what can be written is written and marked partial."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / "tests" / "fixtures" / "runs" / "smoke-twin"


def _capacity(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "codesync_load.cli", "capacity", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_missing_run_directory_is_one_line(tmp_path: Path) -> None:
    done = _capacity("--from", str(tmp_path / "nope"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"codesync-load: error: {tmp_path / 'nope'} is not a directory; "
        "pass the run directory `codesync-load run` printed"
    ]


def test_bad_options_are_one_line(tmp_path: Path) -> None:
    for args, message in [
        (("--target-editors", "0"), "--target-editors 0 is not a positive number of editors"),
        (("--headroom", "1.5"), "--headroom 1.5 is not a share"),
        (("--slo", str(tmp_path / "none.toml")), "SLO gate file"),
    ]:
        done = _capacity("--from", str(SMOKE), *args)
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr, done.stderr


def test_a_run_of_another_profile_still_writes_a_report_marked_partial(tmp_path: Path) -> None:
    run = tmp_path / "smoke"
    shutil.copytree(SMOKE, run)
    done = _capacity("--from", str(run), "--target-editors", "10000")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == str(run / "capacity" / "capacity.html")
    assert lines[-2] == "capacity (PARTIAL): no steps in the run; nothing to fit"
    assert any("has no step-K phases: not a run of a step profile" in line for line in lines)
    result = json.loads((run / "capacity" / "capacity.json").read_text())
    assert result["partial"] is True and result["steps"] == []


def test_fewer_steps_than_a_fit_needs_is_named(tmp_path: Path) -> None:
    """The recorded smoke run's phases renamed as three steps: the report is written, the fit is not."""
    run = tmp_path / "three-steps"
    shutil.copytree(SMOKE, run)
    ledger = json.loads((run / "ledger.json").read_text())
    for i, phase in enumerate(ledger["phases"], 1):
        phase["name"] = f"step-{i}"
    (run / "ledger.json").write_text(json.dumps(ledger))
    meta = json.loads((run / "run.json").read_text())
    meta["profile"]["stages"] = [{"name": f"step-{i}", "users": 5 * i, "spawn_rate": 5.0} for i in (1, 2, 3)]
    (run / "run.json").write_text(json.dumps(meta))
    done = _capacity("--from", str(run))
    assert done.returncode == 1, done.stderr
    assert "partial: USL fit: a USL fit needs at least 4 steps at distinct concurrency" in done.stdout
    assert (run / "capacity" / "capacity.html").exists()
