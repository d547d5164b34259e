"""The baseline comparison: exact Mann-Whitney U, seeded bootstrap, deterministic verdicts."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from codesync_load.baseline import (
    bootstrap_ci,
    compare,
    compare_paired,
    compare_to_baseline,
    load_baseline,
    mann_whitney_greater,
    save_baseline,
    wilcoxon_greater,
    write_values,
)
from codesync_load.errors import HarnessError
from codesync_load.gates import BaselineSettings, parse_metric
from codesync_load.ledger import Ledger

SETTINGS = BaselineSettings(alpha=0.05, min_effect=1.10, confidence=0.95, resamples=2000, seed=7)


def noisy(rng: random.Random, n: int, centre: float, spread: float = 0.05) -> list[float]:
    """Per-trial p95s around `centre` with +-5 % multiplicative noise (a quiet CI machine)."""
    return [centre * (1.0 + rng.uniform(-spread, spread)) for _ in range(n)]


def test_exact_p_values_by_hand() -> None:
    # complete separation, 3 vs 3: only 1 of C(6,3) = 20 splits is as extreme
    assert mann_whitney_greater([1, 2, 3], [4, 5, 6]) == (9.0, 0.05, "exact")
    # the opposite direction: every split is at least as extreme
    assert mann_whitney_greater([4, 5, 6], [1, 2, 3]) == (0.0, 1.0, "exact")
    # 5 vs 5 complete separation: 1 / C(10,5) = 1/252
    assert mann_whitney_greater([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])[1] == pytest.approx(1 / 252)
    # all tied: no evidence at all
    assert mann_whitney_greater([2, 2, 2], [2, 2, 2])[1] == 1.0


def test_normal_approximation_for_large_groups() -> None:
    base = [float(i) for i in range(30)]
    u, p, method = mann_whitney_greater(base, [v + 100 for v in base])
    assert method == "normal" and u == 900.0 and p < 1e-9


def test_same_data_same_verdict_on_repeated_calls() -> None:
    rng = random.Random(1)
    base, cand = noisy(rng, 5, 0.100), noisy(rng, 5, 0.118)
    first = compare(base, cand, "p95(http)", SETTINGS)
    for _ in range(5):
        again = compare(base, cand, "p95(http)", SETTINGS)
        assert again == first  # p, U, the bootstrap interval and the verdict, to the last bit


def test_thirty_percent_shift_is_detected() -> None:
    caught = 0
    for seed in range(20):
        rng = random.Random(seed)
        cmp = compare(noisy(rng, 5, 0.100), noisy(rng, 5, 0.130), "p95(http)", SETTINGS)
        caught += cmp.verdict == "fail"
        assert cmp.ratio == pytest.approx(1.30, rel=0.12)
        assert cmp.ratio_ci[0] > 1.10 and cmp.ratio_ci[0] <= cmp.ratio <= cmp.ratio_ci[1]
    assert caught == 20


def test_no_shift_passes() -> None:
    false_alarms = 0
    for seed in range(20):
        rng = random.Random(100 + seed)
        cmp = compare(noisy(rng, 5, 0.100), noisy(rng, 5, 0.100), "p95(http)", SETTINGS)
        false_alarms += cmp.verdict == "fail"
        assert cmp.ratio_ci[0] < 1.0 < cmp.ratio_ci[1] or abs(cmp.ratio - 1) < 0.05
    assert false_alarms == 0


def test_significant_but_small_shift_is_not_a_regression() -> None:
    cmp = compare([1.00, 1.01, 1.02], [1.03, 1.04, 1.05], "m", SETTINGS)
    assert cmp.p_value == 0.05 and cmp.ratio == pytest.approx(1.04 / 1.01)
    assert cmp.verdict == "pass"  # p <= alpha but ratio < min_effect 1.10


def test_zero_baseline_uses_the_difference() -> None:
    cmp = compare([0, 0, 0], [1, 2, 3], "failures", SETTINGS)
    assert cmp.effect_kind == "difference" and cmp.ratio == 2.0 and cmp.verdict == "fail"


def test_bootstrap_is_seeded() -> None:
    a, b = [1.0, 1.2, 0.9, 1.1], [1.3, 1.4, 1.2, 1.5]
    assert bootstrap_ci(a, b, "ratio", 0.95, 500, 3) == bootstrap_ci(a, b, "ratio", 0.95, 500, 3)
    assert bootstrap_ci(a, b, "ratio", 0.95, 500, 3) != bootstrap_ci(a, b, "ratio", 0.95, 500, 4)


def test_signed_rank_exact_p_values_by_hand() -> None:
    assert wilcoxon_greater([0.1, 0.2, 0.3, 0.4, 0.5]) == (15.0, 1 / 32, "exact")  # every pair positive
    assert wilcoxon_greater([-0.1, 0.2, 0.3, 0.4, 0.5]) == (14.0, 2 / 32, "exact")  # W+ >= 14: {all}, {2..5}
    assert wilcoxon_greater([-1, -2, 3, 4, 5, 6, 7]) == (25.0, 5 / 128, "exact")
    assert wilcoxon_greater([1, 1, -1]) == (4.0, 0.5, "exact")  # midranks 2, 2, 2: W+ >= 4 in 4 of 8
    assert wilcoxon_greater([0, 0]) == (0.0, 1.0, "exact")  # zero differences carry no evidence


def machine(pairs: int, shift: float, seed: int) -> tuple[list[float], list[float]]:
    """Per-trial medians of (reference, candidate) trials run at the same time on a shared machine:
    each window's load scales both by a common factor of 0.6 .. 1.6 (what other jobs do), and
    each trial has +-6 % of its own noise; the candidate is `shift` times slower."""
    rng = random.Random(seed)
    reference, candidate = [], []
    for _ in range(pairs):
        load = rng.uniform(0.6, 1.6)
        reference.append(0.010 * load * rng.uniform(0.94, 1.06))
        candidate.append(0.010 * load * rng.uniform(0.94, 1.06) * shift)
    return reference, candidate


def test_pairs_catch_thirty_percent_that_unpaired_groups_miss_on_a_noisy_machine() -> None:
    settings = BaselineSettings(alpha=0.05, min_effect=1.15, seed=3)
    missed_unpaired = 0
    for seed in range(20):
        reference, candidate = machine(7, 1.3, seed)
        paired = compare_paired(reference, candidate, "m", settings)
        assert paired.verdict == "fail" and paired.p_value == 1 / 128
        assert 1.15 < paired.ratio_ci[0] <= paired.ratio <= paired.ratio_ci[1] < 1.45
        missed_unpaired += compare(reference, candidate, "m", settings).verdict == "pass"
        healthy = compare_paired(*machine(7, 1.0, 100 + seed), "m", settings)
        assert healthy.verdict == "pass" and 0.93 < healthy.ratio < 1.07
    assert missed_unpaired >= 10  # the machine's load swamps the shift between unpaired groups


def test_paired_comparison_needs_equal_groups() -> None:
    with pytest.raises(HarnessError, match="as many reference as candidate trials"):
        compare_paired([1.0, 2.0], [1.0], "m", SETTINGS)


def test_reference_comparison_pairs_trials_and_drops_unmeasured_pairs() -> None:
    metric = parse_metric("median(autosave_put)", "t")
    metric = type(metric)(**{**metric.__dict__, "label": "autosave_put_median"})
    settings = BaselineSettings(metrics=(metric,), seed=1)
    reference = {"autosave_put_median": [0.010, None, 0.011, 0.0105, 0.020, 0.008, 0.009]}
    candidate = {"autosave_put_median": [0.013, 0.0145, float("nan"), 0.0137, 0.026, 0.0104, 0.0117]}
    [result] = compare_to_baseline(reference, candidate, settings, "r", against="reference", paired=True)
    assert result.verdict == "fail" and result.name == "baseline: autosave_put_median"
    assert result.summary.startswith("autosave_put_median regressed: median of paired ratios 1.300 [95% CI ")
    assert "Wilcoxon signed-rank W+=15 p=0.0312 (exact, one-sided), 5 pairs" in result.summary
    assert result.tolerance == "Wilcoxon signed-rank: regression iff p <= 0.05 and ratio >= 1.1"
    assert [row[0] for row in result.evidence.rows] == ["reference"] * 5 + ["candidate"] * 5
    held = {"autosave_put_median": [0.0101, 0.015, 0.010, 0.0107, 0.019, 0.0081, 0.0092]}
    [passed] = compare_to_baseline(reference, held, settings, "r", "reference", paired=True)
    assert passed.verdict == "pass" and passed.summary.startswith("autosave_put_median within reference: ")
    [empty] = compare_to_baseline({"autosave_put_median": [None]}, candidate, settings, "r", "reference")
    assert empty.verdict == "fail" and empty.summary == (
        "autosave_put_median: the reference trials measured nothing; cannot compare"
    )


def make_run(tmp_path: Path, name: str, propagation: list[float], server_value: float | None) -> Path:
    run = tmp_path / name
    ledger = Ledger(meta={"profile": "synthetic"})
    ledger.phase_start("steady", at=10.0)
    for v in propagation:
        ledger.sample("yjs_propagation_s", v)
    ledger.phase_end(at=20.0)
    ledger.write(run / "ledger.json", complete=True)
    if server_value is not None:
        write_values(run, {"put_mean": server_value})
    return run


def test_save_load_and_compare_files(tmp_path: Path) -> None:
    metric = parse_metric("p95(edit_propagation)", "t")
    server = parse_metric("server: sum(x)", "t")
    server = type(server)(**{**server.__dict__, "label": "put_mean"})
    runs = [make_run(tmp_path, f"b{i}", [0.010 + i * 0.001] * 20, 0.040 + i * 0.001) for i in range(3)]
    path = save_baseline(runs, tmp_path / "base", [metric, server])
    assert path == tmp_path / "base" / "baseline.json"
    saved = load_baseline(tmp_path / "base")
    assert saved == {"p95(edit_propagation)": [0.010, 0.011, 0.012], "put_mean": [0.040, 0.041, 0.042]}
    settings = BaselineSettings(metrics=(metric, server), seed=1)
    results = compare_to_baseline(
        saved, {"p95(edit_propagation)": [0.0101, 0.0111, 0.0119], "put_mean": [0.052, 0.053, 0.054]}, settings, "b"
    )
    assert [(r.name, r.verdict) for r in results] == [
        ("baseline: p95(edit_propagation)", "pass"),
        ("baseline: put_mean", "fail"),
    ]
    assert "Mann-Whitney U=9 p=0.0500" in results[1].summary
    # a server metric is only measured while Prometheus runs: without values.json it is one clear line
    bare = make_run(tmp_path, "bare", [0.01], None)
    with pytest.raises(HarnessError, match=r"no recorded value of .put_mean.*codesync-load gate"):
        save_baseline([bare], tmp_path / "b2", [metric, server])
    (tmp_path / "bad.json").write_text(json.dumps({"schema": "other"}))
    with pytest.raises(HarnessError, match="is not a codesync-baseline/1 file"):
        load_baseline(tmp_path / "bad.json")


def test_baseline_cli_save_and_compare(tmp_path: Path) -> None:
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    gates = tmp_path / "g.toml"
    gates.write_text('gates = ["failures == 0"]\n[baseline.metrics]\nput_mean = "server: sum(x)"\n')
    base = [make_run(tmp_path, f"b{i}", [0.01], 0.040 + i * 0.001) for i in range(3)]
    slow = [make_run(tmp_path, f"s{i}", [0.01], 0.052 + i * 0.001) for i in range(3)]
    same = [make_run(tmp_path, f"h{i}", [0.01], 0.0405 + i * 0.001) for i in range(3)]

    def cli(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "codesync_load.cli", "baseline", *argv, "--gates", str(gates)],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=60,
        )

    saved = cli("save", *map(str, base), "--out", str(tmp_path / "base"))
    assert saved.returncode == 0 and saved.stdout.strip() == str(tmp_path / "base" / "baseline.json")
    regressed = cli("compare", *map(str, slow), "--baseline", str(tmp_path / "base"))
    assert regressed.returncode == 1
    assert regressed.stdout.splitlines()[-1] == "baseline FAIL: 1 of 1 metrics regressed"
    held = cli("compare", *map(str, same), "--baseline", str(tmp_path / "base"))
    assert held.returncode == 0, held.stdout
    assert "put_mean within baseline: ratio of medians 1.012" in held.stdout
