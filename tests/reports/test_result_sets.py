"""Each `verify` of a run is its own result set; `report` shows every set, latest first.

No Prometheus is needed: the two verifications run checks that read only the monitoring
files (a run directory with an empty ledger serves), so the sets differ by their options.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str, state: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CODESYNC_STATE_DIR": str(state)}
    return subprocess.run(
        [sys.executable, "-m", "codesync_load.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_two_verifications_are_two_sets_and_the_report_lists_both_latest_first(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "ledger.json").write_text(json.dumps({"meta": {}}))
    common = ("verify", str(run_dir), "--prometheus-url", "http://127.0.0.1:9")
    first = _cli(*common, "--check", "alerts-severities-routed", state=tmp_path)
    second = _cli(*common, "--check", "rules-promtool-tests", state=tmp_path)
    assert (first.returncode, second.returncode) == (0, 0), first.stdout + first.stderr + second.stderr
    assert (
        second.stdout.strip().splitlines()[-1]
        == "verify PASS on the run's target (the run recorded none): no check failed"
    )

    sets = sorted((run_dir / "verify" / "sets").iterdir())
    assert len(sets) == 2 and all((s / "results.json").is_file() and (s / "junit.xml").is_file() for s in sets)
    latest = json.loads((run_dir / "verify" / "results.json").read_text())
    assert [c["name"] for c in latest["checks"]] == ["rules-promtool-tests"]  # the latest copy, as before

    report = _cli("report", str(run_dir), state=tmp_path)
    assert report.returncode == 0, report.stderr
    doc = json.loads((run_dir / "report" / "report.json").read_text())
    assert [[c["name"] for c in s["checks"]] for s in doc["result_sets"]] == [
        ["rules-promtool-tests"],
        ["alerts-severities-routed"],
    ]
    assert [s["options"]["check"] for s in doc["result_sets"]] == [
        ["rules-promtool-tests"],
        ["alerts-severities-routed"],
    ]
    assert [c["name"] for c in doc["checks"]] == ["rules-promtool-tests"]
    markdown = (run_dir / "report" / "report.md").read_text()
    assert f"## Checks (latest verify set {doc['result_sets'][0]['name']}" in markdown
    assert f"## Earlier verify set {doc['result_sets'][1]['name']}" in markdown
    assert "alerts-severities-routed" in markdown.split("## Earlier verify set")[1]


def test_a_corrupt_set_is_a_fail_row_naming_its_file_and_exit_2_with_every_other_set_kept(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "ledger.json").write_text(json.dumps({"meta": {}}))
    good = _cli(
        "verify",
        str(run_dir),
        "--prometheus-url",
        "http://127.0.0.1:9",
        "--check",
        "alerts-severities-routed",
        state=tmp_path,
    )
    assert good.returncode == 0, good.stdout + good.stderr
    broken = run_dir / "verify" / "sets" / "29991231T235959Z-1" / "results.json"
    broken.parent.mkdir()
    broken.write_text('{"checks": [{"name": "counters-match-ledger", "verdict": "fa')  # truncated
    stored = broken.read_bytes()

    report = _cli("report", str(run_dir), state=tmp_path)
    assert report.returncode == 2, report.stdout + report.stderr
    assert report.stderr.strip().splitlines() == [
        f"error: {broken} is corrupt (Unterminated string starting at); rerun `codesync-load verify` on the run"
    ]
    doc = json.loads((run_dir / "report" / "report.json").read_text())
    assert [s["name"] for s in doc["result_sets"]] == ["29991231T235959Z-1", good_set(run_dir)]
    latest = doc["result_sets"][0]
    assert [(c["name"], c["verdict"]) for c in latest["checks"]] == [(str(broken), "fail")]
    assert [c["name"] for c in doc["result_sets"][1]["checks"]] == ["alerts-severities-routed"]  # kept
    assert str(broken) in (run_dir / "report" / "report.md").read_text()
    assert broken.read_bytes() == stored  # nothing stored is rewritten


def good_set(run_dir: Path) -> str:
    (only,) = [p.name for p in (run_dir / "verify" / "sets").iterdir() if p.name != "29991231T235959Z-1"]
    return only
