"""rules-promtool-generated judges the alert rules against the ledger, not against themselves.

No Prometheus and no target: a run directory with a hand-made ledger (the counts a run would
record) and promtool. Fed the ledger's rates, the shipped rules decide as the ledger's numbers
say of the guide's thresholds; a rule file with a wrong threshold, a wrong quantile or a window
the evaluation interval cannot fill is caught, naming the alert and the ledger's number.
Before the ledger was the oracle, the check compared each rule with itself on the same data,
and every one of these mutated files passed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codesync_load.ledger import Ledger
from verify.checks import REGISTRY, CheckResult
from verify.context import MONITORING, VerifyContext, VerifyOptions

START = 1_700_000_000.0
LOAD_S = 100.0
RULES = MONITORING / "alerts.yml"


def run_dir(tmp_path: Path, *, ok: int, errors: int, limited: int = 0, latency_s: float = 0.02) -> Path:
    """A finished run of LOAD_S seconds: `ok` 200s and `errors` 500s on one route, `limited` 429s
    of the search limiter (answers too: the error ratio's denominator), a latency sample per answer."""
    ledger = Ledger(meta={"profile": "test", "started_at": START})
    ledger.phase_start("steady", at=START)
    ledger.count("http", "GET", "/api/sessions", 200, n=ok)
    if errors:
        ledger.count("http", "GET", "/api/sessions", 500, n=errors)
    if limited:
        ledger.count("http", "POST", "/api/sessions/:id/search", 429, n=limited)
        ledger.count("rate_limited", "search", n=limited)
    ledger.sample_many("http_s", [latency_s] * (ok + errors + limited))
    ledger.phase_end(at=START + LOAD_S)
    folder = tmp_path / "run"
    folder.mkdir()
    ledger.write(folder / "ledger.json", complete=True)
    doc = json.loads((folder / "ledger.json").read_text())
    doc["written_at"] = START + LOAD_S  # finalised as the load ended (the window is the load's)
    (folder / "ledger.json").write_text(json.dumps(doc))
    return folder


def judge(folder: Path, rules: Path = RULES) -> CheckResult:
    ctx = VerifyContext(VerifyOptions(run_dir=folder, rules=[rules]))
    return REGISTRY["rules-promtool-generated"].run(ctx)


def mutated(tmp_path: Path, old: str, new: str) -> Path:
    text = RULES.read_text()
    assert text.count(old) == 1, old
    path = tmp_path / "alerts.yml"
    path.write_text(text.replace(old, new))
    return path


def rows(result: CheckResult) -> dict[str, tuple]:
    assert result.evidence is not None, result.render()
    return {row[0]: row[1:] for row in result.evidence.rows}


def test_the_shipped_rules_decide_as_the_ledger_says_at_ten_percent_errors(tmp_path: Path) -> None:
    result = judge(run_dir(tmp_path, ok=750, errors=250, limited=1500))
    assert result.verdict == "pass", result.render()
    found = rows(result)
    assert found["HighErrorRate"][1:] == ("0.1", "> 0.05", "fires", "fires", True)
    assert found["HighRateLimitHits"][1:] == ("15", "> 10", "fires", "fires", True)
    assert found["HighResponseTime"][3:] == ("silent", "silent", True)
    assert found["WebSocketConnectionFailures"][3:] == ("silent", "silent", True)
    assert found["HighMemoryUsage"][3:5] == ("not judged against the ledger", "backend.toml states no threshold for it")
    text = (tmp_path / "run" / "verify" / "generated_rules_test.yml").read_text()
    assert 'codesync_http_requests_total{instance="ledger", job="codesync-backend", method="GET"' in text


@pytest.mark.parametrize(
    ("old", "new", "alert", "says"),
    [
        # the threshold moved (the annotation still says 5 %): silent at 10 % errors
        ("            > 0.05\n", "            > 0.5\n", "HighErrorRate", "stays silent"),
        # the rate-limit threshold ten times the guide's: silent at 15 rejections/s
        ("[5m])) > 10\n", "[5m])) > 100\n", "HighRateLimitHits", "stays silent"),
        # the median instead of p95, in milliseconds: fires at 20 ms
        ("histogram_quantile(0.95,", "1000 * histogram_quantile(0.5,", "HighResponseTime", "fires"),
    ],
    ids=["error-threshold-x10", "rate-limit-threshold-x10", "latency-in-ms"],
)
def test_a_wrong_rule_is_caught_naming_the_alert_and_the_ledgers_number(
    tmp_path: Path, old: str, new: str, alert: str, says: str
) -> None:
    result = judge(run_dir(tmp_path, ok=750, errors=250, limited=1500), mutated(tmp_path, old, new))
    assert result.verdict == "fail", result.render()
    assert result.summary.startswith(f"{alert} {says} at the ledger's "), result.summary
    assert [name for name, row in rows(result).items() if row[-1] is False] == [alert]


def test_a_threshold_below_the_guides_fires_where_the_ledger_says_silent(tmp_path: Path) -> None:
    folder = run_dir(tmp_path, ok=980, errors=20)  # 2 % errors: under the guide's 5 %
    assert judge(folder).verdict == "pass"
    result = judge(folder, mutated(tmp_path, "            > 0.05\n", "            > 0.01\n"))
    assert result.verdict == "fail", result.render()
    assert result.summary == (
        "HighErrorRate fires at the ledger's error ratio (20 of 1000) 0.02 (threshold > 0.05: it should stay silent)"
    )


def test_a_window_the_evaluation_interval_cannot_fill_is_caught(tmp_path: Path) -> None:
    # [10s] at the deployment's 15 s evaluation interval holds one sample: rate() is empty
    result = judge(run_dir(tmp_path, ok=900, errors=100), mutated(tmp_path, '"5.."}[5m]', '"5.."}[10s]'))
    assert result.verdict == "fail", result.render()
    assert result.summary.startswith("HighErrorRate stays silent at the ledger's error ratio (100 of 1000) 0.1")


def test_rules_with_no_stated_alert_are_nothing_to_judge(tmp_path: Path) -> None:
    own = tmp_path / "own.yml"
    own.write_text(
        "groups:\n  - name: g\n    rules:\n      - alert: MyOwn\n"
        '        expr: sum(rate(codesync_http_requests_total{job="codesync-backend"}[1m])) > 0\n'
    )
    result = judge(run_dir(tmp_path, ok=10, errors=0), own)
    assert result.verdict == "skip", result.render()
    assert result.summary.startswith("nothing to judge: no alert rule both has a threshold stated"), result.summary
    assert "MyOwn: backend.toml states no threshold for it" in result.summary


@pytest.mark.parametrize(
    ("latency_s", "ledger_says", "rules_say"),
    [(6.0, "fires", "fires"), (0.3, "silent", "silent"), (1.5, "undecided", "fires")],
    ids=["past-the-last-bucket", "under", "inside-the-thresholds-bucket"],
)
def test_the_p95_is_judged_at_the_histograms_bucket_resolution(
    tmp_path: Path, latency_s: float, ledger_says: str, rules_say: str
) -> None:
    # p95 in (1, 5] with the threshold 2 s inside it: histogram_quantile's interpolation, not the
    # ledger, decides there; the row says so and no verdict is drawn from it
    result = judge(run_dir(tmp_path, ok=100, errors=0, latency_s=latency_s))
    assert result.verdict == "pass", result.render()
    assert rows(result)["HighResponseTime"][3:5] == (ledger_says, rules_say)


def test_an_empty_run_is_nothing_to_judge(tmp_path: Path) -> None:
    result = judge(run_dir(tmp_path, ok=0, errors=0))
    assert result.verdict == "skip", result.render()
    assert result.summary.startswith("nothing to judge: the run's ledger ("), result.summary
