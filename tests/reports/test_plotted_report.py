"""The run report with plots, from a recorded run directory (made by a real short run, see
tests/fixtures/runs/README.md): sections in order, self-contained, byte-identical rebuilds,
what a run directory lacks named, the Markdown's PNG copies and the CI job summary."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "runs" / "smoke-twin"
# The report's sections, in the order issue #13 asks for them.
SECTIONS = (
    "Checks",
    "Load offered over time",
    "Client latency per request type over time",
    "Edit propagation",
    "Reconciliation: the ledger beside the target's metrics",
    "Dashboard panels beside the harness's measurement",
    "Every dashboard panel over time, beside the harness's own measurement",
    "Alerts",
    "Target and load generator resources",
)


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.links: list[str] = []
        self.headings: list[str] = []
        self._in_h2 = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)
        self.links += [v for k, v in attrs if k in ("src", "href") and v and not v.startswith("#")]
        self._in_h2 = tag == "h2"

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2":
            self._in_h2 = False

    def handle_data(self, data: str) -> None:
        if self._in_h2:
            self.headings.append(data)


def _report(run: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "codesync_load.cli", "report", str(run), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture run copied and reported once (with a job summary file), shared by the tests."""
    run = tmp_path_factory.mktemp("plotted") / "smoke-twin"
    shutil.copytree(FIXTURE, run)
    summary = run.parent / "summary.md"
    summary.write_text("earlier step\n")
    done = _report(run, env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == str(run / "report" / "report.html")
    return run


def test_sections_in_order_inline_and_offline(built: Path) -> None:
    page_text = (built / "report" / "report.html").read_text()
    page = Page()
    page.feed(page_text)
    # a heading may go on after the section's name ("Checks (latest verify set ...)")
    positions = [next((i for i, h in enumerate(page.headings) if h.startswith(s)), -1) for s in SECTIONS]
    assert -1 not in positions, [s for s, p in zip(SECTIONS, positions, strict=True) if p < 0]
    assert positions == sorted(positions), page.headings
    # 5 section charts + one per dashboard panel (10 panels in monitoring/grafana), all inline SVG
    assert page.tags.count("svg") == 5 + 10
    assert not {"script", "img", "link", "iframe"} & set(page.tags)
    assert page.links == []  # nothing fetched: no external script, style, font or image
    ids = re.findall(r'\sid="([^"]+)"', page_text)
    assert len(ids) == len(set(ids)), "two charts share an SVG id"
    assert "Missing from this report" not in page.headings  # the recorded run has every part


def test_markdown_has_png_copies_and_reaches_the_job_summary(built: Path) -> None:
    out = built / "report"
    md = (out / "report.md").read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", md)
    assert sorted(images) == [f"run1-{n}.png" for n in ("alerts", "latency", "load", "propagation", "resources")]
    for name in images:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = (built.parent / "summary.md").read_text()
    assert summary == "earlier step\n" + md


def test_a_rebuild_is_byte_identical(built: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    done = _report(built, "--out", str(again))
    assert done.returncode == 0, done.stderr
    first = built / "report"
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in again.iterdir())
    for name in names:
        assert (first / name).read_bytes() == (again / name).read_bytes(), name


def test_a_run_without_snapshot_or_history_says_what_is_missing(tmp_path: Path) -> None:
    run = tmp_path / "old-run"
    shutil.copytree(FIXTURE, run)
    shutil.rmtree(run / "snapshot")
    (run / "locust_stats_history.csv").unlink()
    done = _report(run)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    page = (run / "report" / "report.html").read_text()
    assert "<h2>Missing from this report</h2>" in page
    assert "no metrics snapshot in" in page and "no readable locust_stats_history.csv" in page
    md = (run / "report" / "report.md").read_text()
    assert "## Missing from this report" in md and "no metrics snapshot in" in md


def test_chromium_renders_every_section_without_console_errors(built: Path, tmp_path: Path) -> None:
    browser = shutil.which("chromium")
    if browser is None:
        pytest.skip("Debian's chromium is not installed (scripts/bootstrap.sh installs it as root)")
    page = built / "report" / "report.html"
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
         "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line]
    assert console == []
    dom = done.stdout
    for section in SECTIONS:
        assert f"<h2>{section}" in dom, section  # the DOM as parsed: entities decoded
    assert dom.count("<svg") == 15


def test_baseline_run_comparison_per_gate_metric(tmp_path: Path) -> None:
    """The recorded run against itself relabelled as another profile: every client latency gate
    is tested (ratio 1, no regression), scalars show their change, server gates are not compared,
    and the other profile is named."""
    run = tmp_path / "run"
    other = tmp_path / "other"
    shutil.copytree(FIXTURE, run)
    shutil.copytree(FIXTURE, other)
    ledger = other / "ledger.json"
    ledger.write_text(ledger.read_text().replace('"profile": "smoke"', '"profile": "ci"', 1))
    done = _report(run, "--baseline", str(other))
    assert done.returncode == 0, done.stderr
    doc = json.loads((run / "report" / "report.json").read_text())
    rows = {r["name"]: r for r in doc["baseline"]}
    propagation = rows["baseline: p95(edit_propagation) < 250ms"]
    assert propagation["verdict"] == "pass"
    assert "(+0%)" in propagation["measured"] and "ratio 1.000" in propagation["measured"]
    assert rows["baseline: error_rate < 1%"]["summary"] == "one value per run, no test: 0% -> 0%"
    assert rows["baseline: server-http-p95"]["verdict"] == "skip"
    assert any("ran profile 'ci', this run 'smoke'" in note for note in doc["notes"])


def test_a_baseline_that_is_not_a_run_is_one_line(tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run)
    (tmp_path / "empty").mkdir()
    done = _report(run, "--baseline", str(tmp_path / "empty"))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"codesync-load: error: --baseline {tmp_path / 'empty'} holds no ledger.json; pass another run directory"
    )
