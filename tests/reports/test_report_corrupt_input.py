"""`codesync-load report` on a corrupt run directory: one line, exit 2, like `verify` (issue #12 item 6).

A truncated ledger.json was reported as "no ledger in this run directory" with exit 0: a false
statement about the run. The same directory makes `verify` exit 2; so must `report`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from codesync_load.ledger import Ledger
from tests.stack._support import run_cli


def written_run(tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    ledger = Ledger(meta={})
    ledger.phase_start("steady", at=1000.0)
    ledger.count("http", "GET", "/health", 200, n=3)
    ledger.phase_end(at=1010.0)
    ledger.write(run_dir / "ledger.json", complete=True)
    return run_dir


# verify/results.json is read through verify.result_sets now, which passes over an unreadable set
@pytest.mark.parametrize("name", ["ledger.json"])
def test_a_truncated_file_is_one_line_and_exit_2(tmp_path: Path, name: str) -> None:
    run_dir = written_run(tmp_path)
    path = run_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    text = (run_dir / "ledger.json").read_text()
    path.write_text(text[: len(text) // 2])  # cut mid-document, as a killed writer leaves it
    done = run_cli("report", str(run_dir), timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"{path} is not valid JSON" in lines[0], lines[0]
    assert not (run_dir / "report" / "report.html").exists()


def test_the_same_directory_intact_is_reported(tmp_path: Path) -> None:
    done = run_cli("report", str(written_run(tmp_path)), timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1].endswith("report.html")
