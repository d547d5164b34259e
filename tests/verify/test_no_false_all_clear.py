"""No PASS about what was not judged (issue #12, items 1-3): skips, --check, --strict, empty input.

Each test reproduces one finding of the issue as a new user would meet it, and pins the
verdict: a check that could not judge is named with why and never counted as passed; a check
selected with --check that cannot judge ends the verification with exit 2; under --strict an
applicable check that could not judge fails while a not-applicable one is listed as such; an
empty input (0 rules, an empty run) is "nothing to judge"; an open /metrics fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from codesync_load.gates import evaluate_gates, parse_gate
from codesync_load.ledger import Ledger
from codesync_load.results import CheckResult
from tests.stack._support import run_cli
from tests.verify._live import start_prometheus
from verify.checks import REGISTRY
from verify.context import VerifyContext, VerifyOptions
from verify.live import LiveTarget, attach_live
from verify.report import exit_code, not_judged_lines, render_table, strict_verdicts


def named(verdict: str, name: str, summary: str = "why", applies: bool = True) -> CheckResult:
    result = CheckResult(verdict, summary, name=name, applies=applies)  # type: ignore[arg-type]
    return result


def test_a_skip_is_not_ok() -> None:
    assert not CheckResult.skipped("no Prometheus").ok
    assert not CheckResult.not_applicable("no Grafana").ok
    assert CheckResult.passed("fine").ok


def test_skips_are_named_with_why_and_never_counted_as_passed() -> None:
    results = [
        named("pass", "a"),
        named("skip", "b", "no client samples"),
        named("skip", "c", "no Grafana in this stack", applies=False),
    ]
    table = render_table(results)
    assert "1 pass, 1 not judged, 1 not applicable" in table
    assert "b: not judged: no client samples" in table and "c: not applicable: no Grafana in this stack" in table
    assert "N/A" in table.splitlines()[4]
    assert not_judged_lines(results) == [
        "b: not judged: no client samples",
        "c: not applicable: no Grafana in this stack",
    ]
    assert exit_code(results) == 0  # without --strict a skip is named, not failed


def test_strict_fails_an_applicable_skip_and_lists_a_not_applicable_one() -> None:
    results = strict_verdicts(
        [named("pass", "a"), named("skip", "b", "no samples"), named("skip", "c", "no Grafana", applies=False)],
        strict=True,
    )
    assert [(r.name, r.verdict) for r in results] == [("a", "pass"), ("b", "fail"), ("c", "skip")]
    assert results[1].summary == "not judged (fails under --strict): no samples"
    assert exit_code(results) == 1


def test_a_check_selected_explicitly_that_cannot_judge_is_an_error() -> None:
    results = strict_verdicts(
        [named("skip", "b", "no samples"), named("skip", "c", "no Grafana", applies=False), named("skip", "d")],
        strict=False,
        explicit={"b", "c"},
    )
    assert [r.verdict for r in results] == ["error", "error", "skip"]
    assert results[1].summary == "selected with --check but not applicable here: no Grafana"
    assert exit_code(results) == 2


def small_run(tmp_path: Path, traffic: bool = True) -> Path:
    run_dir = tmp_path / "run"
    ledger = Ledger(meta={})
    ledger.phase_start("steady", at=1000.0)
    if traffic:
        ledger.count("http", "GET", "/health", 200, n=3)
    ledger.phase_end(at=1010.0)
    ledger.write(run_dir / "ledger.json", complete=True)
    return run_dir


@pytest.fixture
def bare_prometheus(tmp_path: Path) -> Iterator[str]:
    """A real Prometheus scraping nothing (none of these checks reads it; the command's run
    snapshot does, and an unreachable one would be retried for minutes)."""
    work = tmp_path / "prom"
    work.mkdir()
    live = start_prometheus(work, {})
    try:
        yield live.url
    finally:
        live.stop()


def test_issue_reproduction_seven_skips_no_longer_exit_0(tmp_path: Path, bare_prometheus: str) -> None:
    """`verify RUN --check metrics-token-enforced --check csrf-enforced --check 'alert-fires-*'`
    printed 7 SKIP rows and exited 0."""
    done = run_cli(
        "verify",
        str(small_run(tmp_path)),
        "--prometheus-url",
        bare_prometheus,
        "--check",
        "metrics-token-enforced",
        "--check",
        "csrf-enforced",
        "--check",
        "alert-fires-*",
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    selected = ("metrics-token-enforced", "csrf-enforced", "alert-fires-")
    rows = [line for line in done.stdout.splitlines() if line.startswith(selected) and line.split()[1] == "ERROR"]
    assert len(rows) == 7, done.stdout
    assert all("selected with --check but not applicable here: not asked for" in row for row in rows), done.stdout


def empty_rules_context(tmp_path: Path) -> VerifyContext:
    rules = tmp_path / "empty.yml"
    rules.write_text("groups: []\n")
    return VerifyContext(VerifyOptions(rules=[rules]))


@pytest.mark.parametrize(
    "name",
    ["rules-windows-fit-scrape", "alerts-severities-routed"],
)
def test_an_empty_rules_file_is_nothing_to_judge(tmp_path: Path, name: str) -> None:
    result = REGISTRY[name].run(empty_rules_context(tmp_path))
    assert (result.verdict, result.applies) == ("skip", True), result.render()
    assert result.summary == "nothing to judge: 0 rules " + (
        "hold no range window" if "windows" in name else "define no alert"
    )


def test_an_empty_rules_file_exits_2_when_its_checks_are_asked_for(tmp_path: Path, bare_prometheus: str) -> None:
    rules = tmp_path / "empty.yml"
    rules.write_text("groups: []\n")
    done = run_cli(
        "verify",
        str(small_run(tmp_path)),
        "--prometheus-url",
        bare_prometheus,
        "--rules",
        str(rules),
        "--check",
        "rules-windows-fit-scrape",
        "--check",
        "alerts-severities-routed",
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    rows = [line for line in done.stdout.splitlines() if line.split()[1:3] == ["ERROR", "selected"]]
    assert len(rows) == 2 and all("nothing to judge: 0 rules" in row for row in rows), done.stdout


def test_an_empty_run_fails_the_error_rate_gate() -> None:
    """error_rate was 0.0 with no HTTP request, so `error_rate < 1%` passed an empty run."""
    doc = {"counts": {}, "samples": {}, "results": []}
    (result,) = evaluate_gates([parse_gate("error_rate < 1%", "test")], [doc])
    assert result.verdict == "fail", result.render()
    assert "nothing to judge: the ledger records no HTTP attempt" in result.render()


def test_an_open_metrics_page_fails_metrics_token_enforced(twin_factory) -> None:
    """A twin without METRICS_TOKEN serves /metrics to anyone: the symptom, not a skip."""
    twin = twin_factory()  # no METRICS_TOKEN: /metrics is open
    ctx = VerifyContext(VerifyOptions())
    attach_live(ctx, target=LiveTarget(twin.api_url, twin.yjs_url, None))
    result = REGISTRY["metrics-token-enforced"].run(ctx)
    assert result.verdict == "fail", result.render()
    assert result.summary.startswith("API /metrics and Yjs /metrics served the telemetry without a token (200)")


def test_metrics_token_enforced_without_a_known_token_on_a_guarded_target_is_not_judged(twin_factory) -> None:
    twin = twin_factory(env={"METRICS_TOKEN": "s3cret"})
    ctx = VerifyContext(VerifyOptions())
    attach_live(ctx, target=LiveTarget(twin.api_url, twin.yjs_url, None))
    result = REGISTRY["metrics-token-enforced"].run(ctx)
    assert (result.verdict, result.applies) == ("skip", True), result.render()
    assert "the harness was given none" in result.summary
    assert [r[2] for r in result.evidence.rows] == [401, 401]  # type: ignore[union-attr]


def test_the_junit_file_says_why_a_check_gave_no_verdict(tmp_path: Path) -> None:
    from verify.report import write_junit

    path = write_junit([named("skip", "c", "no Grafana", applies=False)], tmp_path / "j.xml")
    assert 'message="not applicable: no Grafana"' in path.read_text()
