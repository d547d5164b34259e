"""The report document: one JSON-ready dict from run directories and check/gate/baseline results.

    >>> doc = build_report([Path("reports/runs/r1")], checks=[...], gates=[...], baseline=[...])
    >>> doc["verdict"], doc["latency"][0]["series"], doc["ledger"]["http_requests"]
    ('pass', 'yjs_propagation_s', 412)

Why a document first: the HTML, the Markdown and the JSON report are three renderings of
this one dict, so they can never disagree. Results are taken as CheckResult.to_dict()
dicts (the verify check shape), whatever produced them: a check, a gate, a comparison.
Latency percentiles come from the ledger's raw samples (never Locust's whole milliseconds).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from codesync_load.errors import HarnessError
from codesync_load.ledger import ledger_summary
from reports.witnesses import read_witnesses

SCHEMA = "codesync-report/1"
PERCENTILES = (50.0, 90.0, 95.0, 99.0)
# The checks whose evidence puts each dashboard panel beside the harness's own measurement
# (every panel, passing or not) and beside Prometheus' own answer when Grafana was asked.
PANEL_CHECK = "dashboard-panels-match-ledger"
GRAFANA_CHECK = "dashboard-grafana-matches-prometheus"
PANEL_CHECKS = (PANEL_CHECK, GRAFANA_CHECK)


def _read_json(path: Path) -> dict[str, Any] | None:
    """The file's document; None only when the file does not exist. A truncated or corrupt file
    is a HarnessError (one line, exit 2), never reported as absent: "no ledger in this run" about
    a ledger that is there but unreadable would be a false statement about the run."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        doc = json.loads(text)
    except ValueError as err:
        raise HarnessError(f"{path} is not valid JSON ({err}); regenerate it (rerun that step)") from None
    if not isinstance(doc, dict):
        raise HarnessError(f"{path} holds a JSON {type(doc).__name__}, not an object; regenerate it")
    return doc


def percentile_sorted(ordered: Sequence[float], q: float) -> float:
    """codesync_load.gates.percentile's rule (linear between order statistics) on sorted values."""
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def latency_table(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per sample series: n, mean, p50/p90/p95/p99, max (seconds)."""
    rows = []
    for name, values in sorted((doc.get("samples") or {}).items()):
        values = sorted(float(v) for v in values)  # once: a soak's million samples, four percentiles
        if not values:
            continue
        row: dict[str, Any] = {"series": name, "n": len(values), "mean": sum(values) / len(values)}
        for q in PERCENTILES:
            row[f"p{q:g}"] = percentile_sorted(values, q)
        row["max"] = values[-1]
        rows.append(row)
    return rows


def run_section(run_dir: Path) -> dict[str, Any]:
    """What one run directory says about itself (profile, window, target, ledger, latencies)."""
    run_dir = Path(run_dir)
    ledger = _read_json(run_dir / "ledger.json") or {}
    meta = ledger.get("meta") or {}
    phases = ledger.get("phases") or []
    starts = [p["start"] for p in phases if p.get("start") is not None]
    ends = [p["end"] for p in phases if p.get("end") is not None]
    return {
        "run_dir": str(run_dir),
        "has_ledger": bool(ledger),
        "profile": meta.get("profile", ""),
        "run_id": meta.get("run_id", run_dir.name),
        "target": _read_json(run_dir / "target.json") or {},
        "phases": phases,
        "window": [min(starts), max(ends)] if starts and ends else None,
        "ledger": ledger_summary(ledger) if ledger else None,
        "latency": latency_table(ledger) if ledger else [],
        "witnesses": read_witnesses(run_dir),
    }


def _data_time(run_dirs: Sequence[Path]) -> str:
    """When the newest run's ledger was last written (UTC), "unknown" without one."""
    stamps = []
    for run_dir in run_dirs:
        doc = _read_json(Path(run_dir) / "ledger.json") or {}
        stamp = doc.get("written_at") or (doc.get("meta") or {}).get("finished_at")
        if isinstance(stamp, int | float):
            stamps.append(float(stamp))
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(max(stamps))) if stamps else "unknown"


def overall_verdict(groups: Sequence[Sequence[dict[str, Any]]]) -> str:
    verdicts = [r.get("verdict") for group in groups for r in group]
    if "error" in verdicts:
        return "error"
    if "fail" in verdicts:
        return "fail"
    return "pass" if verdicts else "unknown"


def build_report(
    run_dirs: Sequence[Path],
    checks: Sequence[dict[str, Any]] = (),
    gates: Sequence[dict[str, Any]] = (),
    baseline: Sequence[dict[str, Any]] = (),
    info: Sequence[dict[str, Any]] = (),
    title: str = "",
    notes: Sequence[str] = (),
    verdict: str | None = None,
    sets: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """The report document (see the module docstring); `verdict` overrides the computed one.

    `info` holds checks that ran but do not decide the verdict (a gate's non-gating checks).
    `sets` are every verify result set of the run, latest first (verify/result_sets.py): the
    latest is `checks`; the report lists the earlier ones after it, each with its options.
    `dashboard_panels` holds the results of PANEL_CHECKS, whatever their verdict: their
    evidence is the panel table every report shows (a skipped one says why it is missing).
    """
    runs = [run_section(Path(d)) for d in run_dirs]
    panels = [c for c in [*checks, *info] if c.get("name") in PANEL_CHECKS]
    return {
        "schema": SCHEMA,
        "title": title or f"codesync-load report: {', '.join(Path(d).name for d in run_dirs)}",
        # the time of the data, not of the build: a report rebuilt from one run is byte-identical
        "generated_at": _data_time(run_dirs),
        "verdict": verdict or overall_verdict([checks, gates, baseline]),
        "notes": list(notes),
        "runs": runs,
        "gates": list(gates),
        "baseline": list(baseline),
        "checks": list(checks),
        "info": list(info),
        "dashboard_panels": panels,
        "result_sets": [dict(x) for x in sets],
        "not_judged": not_judged(checks, gates, baseline),
        "counts": {
            group: {v: sum(1 for r in items if r.get("verdict") == v) for v in ("pass", "fail", "skip", "error")}
            for group, items in (("checks", checks), ("gates", gates), ("baseline", baseline))
        },
    }


def not_judged(*groups: Sequence[dict[str, Any]]) -> list[str]:
    """One line per result that gave no verdict, with why: a report never lets a skip pass for a
    pass ("not judged" applies to the target but could not judge; "not applicable" does not)."""
    return [
        f"{r.get('name')}: {'not judged' if r.get('applies', True) else 'not applicable'}: {r.get('summary')}"
        for group in groups
        for r in group
        if r.get("verdict") == "skip"
    ]


def results_from_run(run_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """{"checks", "gates", "baseline", "info", "sets"} recorded in a run or gate directory, whichever
    files exist; a run's checks are its latest verify result set's."""
    run_dir = Path(run_dir)
    from verify.result_sets import read_result_sets

    gate_doc = _read_json(run_dir / "gate.json") or {}
    checks = list(gate_doc.get("checks") or [])
    sets = [] if gate_doc else read_result_sets(run_dir)
    if sets:
        checks = sets[0]["checks"]
    return {
        "sets": sets,
        "checks": checks,
        "gates": list(gate_doc.get("gates") or []),
        "baseline": list(gate_doc.get("baseline") or []),
        "info": list(gate_doc.get("info") or []),
    }
