"""`codesync-load report RUN --baseline OTHER_RUN`: per gate metric, the change from the other
run, its interval and the verdict of the test in codesync_load/baseline.py.

    >>> results, notes = compare_runs(run_dir, other_run, Path("gates/ci.toml"))
    >>> results[0]["name"], results[0]["measured"]
    ('baseline: p95(edit_propagation)', 'p95 2.1ms -> 2.4ms (+14%); ratio of medians 1.08 [1.02, 1.15], p=0.0031')

One run against one run has one value per metric, too few for a test over trials; a latency
metric has its raw samples, so the stated rule (Mann-Whitney U, one-sided, with the seeded
bootstrap interval of the ratio of medians, regression iff p <= alpha and the ratio >=
min_effect of the gate file's [baseline]) is applied to the two runs' samples, at most
MAX_SAMPLES of each taken at an even stride (the bootstrap resamples them 2,000 times).
Scalar gates (error rate, failures) get their change without a test; server (PromQL) gates
need both runs' Prometheus and are listed as not compared. Runs of different profiles are
compared all the same and the report says so (a note), since that comparison is rarely fair.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from codesync_load.baseline import compare, comparison_result
from codesync_load.errors import HarnessError
from codesync_load.gates import client_value, format_value, load_gates
from codesync_load.results import CheckResult

MAX_SAMPLES = 2000


def _doc(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((Path(run_dir) / "ledger.json").read_text())
    except FileNotFoundError:
        raise HarnessError(f"--baseline {run_dir} holds no ledger.json; pass another run directory") from None
    except ValueError:
        raise HarnessError(f"--baseline {run_dir}/ledger.json is not valid JSON; pass another run directory") from None


def _even(values: list[float]) -> list[float]:
    if len(values) <= MAX_SAMPLES:
        return values
    step = len(values) / MAX_SAMPLES
    return [values[int(i * step)] for i in range(MAX_SAMPLES)]


def _change(metric: Any, before: float | None, after: float | None) -> str:
    text = f"{format_value(metric, before)} -> {format_value(metric, after)}"
    if before and after is not None:
        text += f" ({(after - before) / before:+.0%})"
    return text


def compare_runs(run_dir: Path, other: Path, gate_file: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """(comparison results as report dicts, notes) of `run_dir` against the baseline run `other`."""
    spec = load_gates(gate_file)
    cand, base = _doc(run_dir), _doc(other)
    notes = []
    profiles = ((base.get("meta") or {}).get("profile"), (cand.get("meta") or {}).get("profile"))
    if profiles[0] != profiles[1]:
        notes.append(f"the baseline {Path(other).name} ran profile {profiles[0]!r}, this run {profiles[1]!r}: "
                     "compared all the same, but different loads rarely compare fairly (partial)")  # fmt: skip
    out = []
    for gate in spec.gates:
        metric = gate.metric
        name = f"baseline: {gate.name}"
        if metric.side == "server":
            result = CheckResult.skipped("a server (PromQL) gate needs both runs' Prometheus; not compared")
        elif metric.kind == "latency" and metric.series:
            a = [float(v) for v in (base.get("samples") or {}).get(metric.series, [])]
            b = [float(v) for v in (cand.get("samples") or {}).get(metric.series, [])]
            if not a or not b:
                which = "the baseline" if not a else "this run"
                result = CheckResult.skipped(f"{which} has no {metric.series} samples; nothing to compare")
            else:
                cmp = compare(_even(a), _even(b), gate.name, spec.baseline)
                result = comparison_result(cmp, None, against=f"baseline run {Path(other).name}")
                result.measured = (
                    f"{_change(metric, client_value(metric, base)[0], client_value(metric, cand)[0])}; "
                    + (result.measured or "")
                )
        else:
            before, after = client_value(metric, base)[0], client_value(metric, cand)[0]
            result = CheckResult.passed(f"one value per run, no test: {_change(metric, before, after)}")
            result.measured = _change(metric, before, after)
        result.name = name
        out.append(result.to_dict())
    return out, notes
