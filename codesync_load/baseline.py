"""Baseline comparison: repeated trials of a metric, a stated test, an effect size with its interval.

    >>> save_baseline([Path("reports/runs/t1"), Path("reports/runs/t2")], Path("gates/baselines/ci"), metrics)
    >>> cmp = compare([0.010, 0.011, 0.0105], [0.013, 0.0135, 0.014], metric="p95(http)", settings=BaselineSettings())
    >>> cmp.verdict, round(cmp.p_value, 3), round(cmp.ratio, 2), cmp.ratio_ci
    ('fail', 0.05, 1.29, (1.24, 1.33))
    >>> pair = compare_paired([10.1, 9.2, 11.0, 8.7, 10.4], [13.0, 12.1, 14.2, 11.5, 13.3], "m", settings)
    >>> round(pair.ratio, 3), pair.p_value          # every pair slower: 1/2^5
    (1.291, 0.03125)

Why this shape: one run on a shared 2-core machine is noise, so a baseline is N trials and a
candidate is M trials, each trial reduced to one number per metric (e.g. the autosave route's
median latency from the ledger's raw samples). The decision rule, stated once and applied
identically everywhere:

- Test, unpaired groups (a stored baseline): one-sided Mann-Whitney U (H1: the candidate's
  values tend to be larger, i.e. worse), p from the exact permutation distribution of U over
  all C(N+M, N) splits (midranks for ties) when there are at most EXACT_LIMIT splits, else the
  normal approximation with a tie correction. Effect: the ratio of medians
  median(candidate) / median(baseline).
- Test, paired trials (`gate --reference`: trial i of the reference and of the candidate ran
  at the same time): one-sided Wilcoxon signed-rank test on the per-pair log ratios
  log(candidate_i / reference_i) (H1: they tend to be positive), p exact over all 2^n sign
  patterns. Effect: the median of the per-pair ratios.
- Either effect comes with a percentile bootstrap confidence interval (`resamples` resamples,
  of both groups or of the pairs, random.Random(seed): same inputs, same interval); with a
  zero reference it is a difference instead of a ratio.
- Regression (verdict fail) iff p <= alpha AND effect >= min_effect: significant and large
  enough to matter. Everything is a pure function of the inputs and the settings, so the
  same data always gives the same verdict. Non-parametric throughout: no assumption that
  trial values are normal. Higher values are worse for every metric the gates know.

Where the baseline group comes from - two designs, one rule:

- Concurrent reference trials (`gate --reference`; the design for shared, noisy machines):
  the gate runs a reference target (the same code without the candidate's faults, or with
  `--reference-fault`) next to the candidate and starts each reference trial's load at the
  same moment as a candidate trial's load. Whatever else the machine does in that window
  slows both alike, so the pair's ratio keeps the candidate's own change and sheds most of
  the machine's; the signed-rank test then only assumes that without a regression the sign
  of a pair's log ratio is a coin toss. Measured on 2 shared cores (benchmarks/
  GATE_REPEATABILITY.md): per-trial medians vary by ~25 % from trial to trial, which buries
  a +30 % shift in any comparison of unpaired groups, also interleaved ones.
- A stored baseline (`gate --baseline DIR`, saved by `--save-baseline` or `baseline save`):
  trials from another time, unpaired. Only sound on a quiet, dedicated runner: on a shared
  machine the drift between the two times alone moved healthy ratios of medians to 1.27.

Smallest exact p-values: Mann-Whitney 1/20 = 0.05 with N = M = 3 ("every candidate trial is
worse than every baseline trial"), 1/252 with 5 a side; signed-rank 1/2^n for n pairs, so
alpha 0.05 needs at least 5 pairs (1/32), and with 7 pairs (1/128) the two closest pairs
may go the other way.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codesync_load.errors import HarnessError
from codesync_load.gates import BaselineSettings, Metric, WindowQuery, format_value, measure, parse_metric
from codesync_load.results import CheckResult, Evidence

SCHEMA = "codesync-baseline/1"
VALUES_FILE = Path("gate") / "values.json"  # inside a run directory, written by `codesync-load gate`
EXACT_LIMIT = 200_000


@dataclass(frozen=True)
class Comparison:
    """The outcome for one metric: the test, the effect with its interval, the verdict."""

    metric: str
    baseline: tuple[float, ...]
    candidate: tuple[float, ...]
    u: float
    p_value: float
    method: str
    ratio: float  # median ratio, or the median difference when `effect_kind` is "difference"
    ratio_ci: tuple[float, float]
    effect_kind: str
    alpha: float
    min_effect: float
    confidence: float
    verdict: str  # "pass" | "fail"
    paired: bool = False  # trial i of both groups ran at the same time: the signed-rank test on pairs

    @property
    def test(self) -> str:
        return "Wilcoxon signed-rank" if self.paired else "Mann-Whitney U"

    def sentence(self) -> str:
        low, high = self.ratio_ci
        if self.paired:
            what = "median of paired ratios" if self.effect_kind == "ratio" else "median of paired differences"
            test = f"Wilcoxon signed-rank W+={self.u:g} p={self.p_value:.4f} ({self.method}, one-sided), "
            size = f"{len(self.candidate)} pairs"
        else:
            what = "ratio of medians" if self.effect_kind == "ratio" else "difference of medians"
            test = f"Mann-Whitney U={self.u:g} p={self.p_value:.4f} ({self.method}, one-sided), "
            size = f"N={len(self.baseline)} vs M={len(self.candidate)}"
        return f"{what} {self.ratio:.3f} [{self.confidence:.0%} CI {low:.3f} .. {high:.3f}], {test}{size}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "baseline": list(self.baseline),
            "candidate": list(self.candidate),
            "test": f"{self.test}, one-sided (candidate larger)",
            "u": self.u,
            "p_value": self.p_value,
            "method": self.method,
            "effect": self.effect_kind,
            "effect_value": self.ratio,
            "effect_ci": list(self.ratio_ci),
            "alpha": self.alpha,
            "min_effect": self.min_effect,
            "confidence": self.confidence,
            "verdict": self.verdict,
        }


# -- statistics -------------------------------------------------------------------------------
def _midranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def mann_whitney_greater(baseline: Sequence[float], candidate: Sequence[float]) -> tuple[float, float, str]:
    """(U of the candidate, one-sided p-value for "candidate larger", "exact" | "normal")."""
    n, m = len(baseline), len(candidate)
    if n == 0 or m == 0:
        raise HarnessError("a comparison needs at least one baseline and one candidate trial; add trials")
    pooled = [*baseline, *candidate]
    ranks = _midranks(pooled)
    offset = m * (m + 1) / 2.0
    u = sum(ranks[n:]) - offset
    if math.comb(n + m, m) <= EXACT_LIMIT:
        at_least = 0
        total = 0
        for chosen in itertools.combinations(range(n + m), m):
            total += 1
            if sum(ranks[i] for i in chosen) - offset >= u - 1e-9:
                at_least += 1
        return u, at_least / total, "exact"
    ties = {}
    for value in pooled:
        ties[value] = ties.get(value, 0) + 1
    big_n = n + m
    tie_term = sum(t**3 - t for t in ties.values()) / (big_n * (big_n - 1))
    sigma = math.sqrt(n * m / 12.0 * ((big_n + 1) - tie_term))
    if sigma == 0:
        return u, 1.0, "normal"
    z = (u - n * m / 2.0 - 0.5) / sigma
    return u, 0.5 * math.erfc(z / math.sqrt(2)), "normal"


def _effect(baseline: Sequence[float], candidate: Sequence[float]) -> tuple[float, str]:
    base = statistics.median(baseline)
    cand = statistics.median(candidate)
    if base > 0:
        return cand / base, "ratio"
    return cand - base, "difference"


def bootstrap_ci(
    baseline: Sequence[float], candidate: Sequence[float], kind: str, confidence: float, resamples: int, seed: int
) -> tuple[float, float]:
    """Percentile bootstrap interval of the effect, resampling both groups with a seeded RNG."""
    rng = random.Random(seed)
    estimates = []
    for _ in range(resamples):
        b = [baseline[rng.randrange(len(baseline))] for _ in baseline]
        c = [candidate[rng.randrange(len(candidate))] for _ in candidate]
        mb, mc = statistics.median(b), statistics.median(c)
        if kind == "ratio":
            estimates.append(mc / mb if mb > 0 else math.inf)
        else:
            estimates.append(mc - mb)
    estimates.sort()
    tail = (1.0 - confidence) / 2.0
    return _quantile_sorted(estimates, tail), _quantile_sorted(estimates, 1.0 - tail)


def _quantile_sorted(estimates: Sequence[float], q: float) -> float:
    """The percentile-bootstrap end point: the estimate at rank round(q * (n - 1))."""
    index = min(len(estimates) - 1, max(0, math.floor(q * (len(estimates) - 1) + 0.5)))
    return estimates[index]


def compare(
    baseline: Sequence[float], candidate: Sequence[float], metric: str, settings: BaselineSettings
) -> Comparison:
    """Apply the stated rule (module docstring) to one metric's per-trial values."""
    base = tuple(float(v) for v in baseline)
    cand = tuple(float(v) for v in candidate)
    u, p, method = mann_whitney_greater(base, cand)
    effect, kind = _effect(base, cand)
    ci = bootstrap_ci(base, cand, kind, settings.confidence, settings.resamples, settings.seed)
    big_enough = effect >= settings.min_effect if kind == "ratio" else effect > 0
    verdict = "fail" if p <= settings.alpha and big_enough else "pass"
    return Comparison(
        metric,
        base,
        cand,
        u,
        p,
        method,
        effect,
        ci,
        kind,
        settings.alpha,
        settings.min_effect,
        settings.confidence,
        verdict,
    )


def wilcoxon_greater(differences: Sequence[float]) -> tuple[float, float, str]:
    """(W+, one-sided p-value for "differences tend to be positive", "exact").

    Zero differences are dropped (Wilcoxon's convention); midranks of |d| for ties. The null
    distribution of W+ (each rank's sign +/- with probability 1/2) is counted exactly over all
    2^n sign patterns by dynamic programming on doubled ranks, so any n stays exact and fast.
    """
    nonzero = [d for d in differences if d != 0]
    if not nonzero:
        return 0.0, 1.0, "exact"
    doubled = [round(2 * r) for r in _midranks([abs(d) for d in nonzero])]
    w_plus2 = sum(r for r, d in zip(doubled, nonzero, strict=True) if d > 0)
    ways = [0] * (sum(doubled) + 1)
    ways[0] = 1
    for rank in doubled:
        for total in range(len(ways) - 1, rank - 1, -1):
            ways[total] += ways[total - rank]
    at_least = sum(ways[w_plus2:])
    return w_plus2 / 2.0, at_least / 2 ** len(nonzero), "exact"


def _paired_effect(reference: Sequence[float], candidate: Sequence[float]) -> tuple[list[float], str]:
    """Per-pair ratios candidate/reference (differences when a reference value is 0) and the kind."""
    if all(r > 0 for r in reference):
        return [c / r for r, c in zip(reference, candidate, strict=True)], "ratio"
    return [c - r for r, c in zip(reference, candidate, strict=True)], "difference"


def compare_paired(
    reference: Sequence[float], candidate: Sequence[float], metric: str, settings: BaselineSettings
) -> Comparison:
    """Apply the stated rule (module docstring) to pairs: trial i of each group ran at the same time."""
    ref = tuple(float(v) for v in reference)
    cand = tuple(float(v) for v in candidate)
    if len(ref) != len(cand) or not ref:
        raise HarnessError(f"{metric}: a paired comparison needs as many reference as candidate trials (>= 1)")
    effects, kind = _paired_effect(ref, cand)
    # the test runs on log ratios (scale-free: a 2x and a 0.5x pair weigh alike) or on differences
    w_plus, p, method = wilcoxon_greater([math.log(e) for e in effects] if kind == "ratio" else effects)
    effect = statistics.median(effects)
    rng = random.Random(settings.seed)
    estimates = sorted(
        statistics.median(effects[rng.randrange(len(effects))] for _ in effects) for _ in range(settings.resamples)
    )
    tail = (1.0 - settings.confidence) / 2.0
    ci = (_quantile_sorted(estimates, tail), _quantile_sorted(estimates, 1.0 - tail))
    big_enough = effect >= settings.min_effect if kind == "ratio" else effect > 0
    verdict = "fail" if p <= settings.alpha and big_enough else "pass"
    return Comparison(
        metric,
        ref,
        cand,
        w_plus,
        p,
        method,
        effect,
        ci,
        kind,
        settings.alpha,
        settings.min_effect,
        settings.confidence,
        verdict,
        paired=True,
    )


def comparison_result(cmp: Comparison, unit_metric: Metric | None = None, against: str = "baseline") -> Any:
    """The comparison as a verify CheckResult named `baseline: <metric>`.

    `against` names the baseline group in the summary and evidence: "baseline" (stored) or
    "reference" (interleaved trials of this run).
    """
    evidence = Evidence(("group", "trial", "value"))
    for label, values in ((against, cmp.baseline), ("candidate", cmp.candidate)):
        for i, value in enumerate(values, 1):
            evidence.add(label, i, format_value(unit_metric, value) if unit_metric else value)
    rule = f"{cmp.test}: regression iff p <= {cmp.alpha:g} and ratio >= {cmp.min_effect:g}"
    if cmp.verdict == "fail":
        summary = f"{cmp.metric} regressed: {cmp.sentence()}"
        result = CheckResult.failed(summary, evidence=evidence)
    else:
        summary = f"{cmp.metric} within {against}: {cmp.sentence()}"
        result = CheckResult.passed(summary, evidence=evidence)
    low, high = cmp.ratio_ci
    result.measured = f"{cmp.effect_kind} {cmp.ratio:.3f} [{low:.3f}, {high:.3f}], p={cmp.p_value:.4f}"
    result.expected = "no regression"
    result.tolerance = rule
    result.name = f"baseline: {cmp.metric}"
    return result


# -- per-trial values and the baseline file ---------------------------------------------------
def trial_values(run_dir: Path, metrics: Sequence[Metric], query: WindowQuery | None = None) -> dict[str, float | None]:
    """Each metric's value on one run directory (server metrics need `query`)."""
    doc = _ledger_doc(run_dir)
    return {metric.name: measure(metric, doc, query) for metric in metrics}


def write_values(run_dir: Path, values: dict[str, float | None]) -> Path:
    path = Path(run_dir) / VALUES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"schema": "codesync-gate-values/1", "values": values}, indent=1))
    return path


def read_values(run_dir: Path, metrics: Sequence[Metric]) -> dict[str, float | None]:
    """Values recorded by the gate command; client metrics missing there come from the ledger."""
    path = Path(run_dir) / VALUES_FILE
    recorded: dict[str, Any] = {}
    if path.exists():
        try:
            recorded = json.loads(path.read_text()).get("values") or {}
        except ValueError:
            raise HarnessError(f"{path} is not valid JSON; rerun `codesync-load gate` for that run") from None
    out: dict[str, float | None] = {}
    doc: dict[str, Any] | None = None
    for metric in metrics:
        if metric.name in recorded:
            out[metric.name] = recorded[metric.name]
        elif metric.side == "client":
            doc = doc if doc is not None else _ledger_doc(run_dir)
            out[metric.name] = measure(metric, doc, None)
        else:
            raise HarnessError(
                f"{run_dir} has no recorded value of {metric.name!r} (server metrics are measured while "
                "Prometheus runs); produce the run with `codesync-load gate` so gate/values.json holds it"
            )
    return out


def _ledger_doc(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / "ledger.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise HarnessError(f"{run_dir} holds no ledger.json; pass run directories of `codesync-load run`") from None
    except ValueError:
        raise HarnessError(f"{path} is not valid JSON; regenerate that run") from None


def save_baseline(run_dirs: Sequence[Path], out: Path, metrics: Sequence[Metric], note: str = "") -> Path:
    """Write OUT/baseline.json with each metric's per-trial values from `run_dirs`."""
    if not run_dirs:
        raise HarnessError("baseline save needs at least one run directory; pass the trials' RUN_DIRs")
    values: dict[str, list[float]] = {m.name: [] for m in metrics}
    for run_dir in run_dirs:
        for text, value in read_values(run_dir, metrics).items():
            if value is None or math.isnan(value):
                raise HarnessError(f"{run_dir} has no data for {text!r}; use a run where the metric was measured")
            values[text].append(float(value))
    doc = {
        "schema": SCHEMA,
        "saved_at": time.time(),
        "note": note,
        "runs": [str(Path(r).resolve()) for r in run_dirs],
        "metrics": values,
    }
    out = Path(out)
    path = out / "baseline.json" if out.suffix != ".json" else out
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1))
    return path


def load_baseline(where: Path) -> dict[str, list[float]]:
    """Metric -> per-trial values of a saved baseline (a directory holding baseline.json, or the file)."""
    where = Path(where)
    path = where / "baseline.json" if where.is_dir() else where
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise HarnessError(f"no baseline at {path}; save one with `codesync-load baseline save RUN_DIR...`") from None
    except ValueError:
        raise HarnessError(f"{path} is not valid JSON; save the baseline again") from None
    if doc.get("schema") != SCHEMA or not isinstance(doc.get("metrics"), dict):
        raise HarnessError(f"{path} is not a {SCHEMA} file; save it with `codesync-load baseline save`")
    return {str(k): [float(v) for v in vs] for k, vs in doc["metrics"].items()}


def compare_to_baseline(
    saved: Mapping[str, Sequence[float | None]],
    candidate: Mapping[str, Sequence[float | None]],
    settings: BaselineSettings,
    source: str,
    against: str = "baseline",
    paired: bool = False,
) -> list[Any]:
    """One CheckResult per baseline metric of `settings` (a metric missing from `saved` is an error).

    `saved` is a stored baseline's values (unpaired: Mann-Whitney U) or this run's reference
    trials (`against` "reference", `paired`: trial i of both ran at the same time, the
    signed-rank test on the pairs); the rule is the module docstring's either way.
    """
    results = []
    for metric in settings.metrics:
        if metric.name not in saved:
            raise HarnessError(
                f"baseline {source} has no values for {metric.name!r}; save it again with the current gate file"
            )
        values = [float(v) for v in candidate.get(metric.name, []) if v is not None and not math.isnan(v)]
        if not values:
            result = CheckResult.failed(f"{metric.name}: the candidate trials measured nothing; cannot compare")
            result.name = f"baseline: {metric.name}"
            results.append(result)
            continue
        if paired:  # a pair with a side that measured nothing is dropped as a whole
            both = [
                (float(r), float(c))
                for r, c in zip(saved[metric.name], candidate.get(metric.name, []), strict=True)
                if r is not None and c is not None and not math.isnan(r) and not math.isnan(c)
            ]
            if not both:
                result = CheckResult.failed(f"{metric.name}: no pair of trials measured both sides; cannot compare")
                result.name = f"baseline: {metric.name}"
                results.append(result)
                continue
            cmp = compare_paired([r for r, _ in both], [c for _, c in both], metric.name, settings)
            results.append(comparison_result(cmp, metric, against))
            continue
        reference = [float(v) for v in saved[metric.name] if v is not None and not math.isnan(v)]
        if not reference:
            result = CheckResult.failed(f"{metric.name}: the {against} trials measured nothing; cannot compare")
            result.name = f"baseline: {metric.name}"
            results.append(result)
            continue
        cmp = compare(reference, values, metric.name, settings)
        results.append(comparison_result(cmp, metric, against))
    return results


def metric_list(texts: Sequence[str]) -> list[Metric]:
    return [parse_metric(t, "--metric") for t in texts]
