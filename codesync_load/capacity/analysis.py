"""The capacity answer of a step run: SLO, USL fit, Little's law, the knee, regressions, projection.

    >>> result = analyse(run_dir, slo=Path("gates/ci.toml"), target_editors=10000)
    >>> result["verdict_line"]
    'capacity: 30 users at the SLO; N* = 22 (USL sigma 0.051, kappa 0.0021, R2 0.98); knee at 26; ...'

Every figure names its source and every rule is stated in `result["method"]`; what could not
be computed is in `result["problems"]` (one line each) and the result is marked partial, so a
run with too few steps or no snapshot still gives what it can.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from codesync_load.capacity.kneedle import knee
from codesync_load.capacity.steps import GENERATOR_LIMIT, RAMP_RULE, step_table
from codesync_load.capacity.usl import FitError, fit_usl
from reports.timeseries import RunSeries

LITTLE_MARGIN = 0.15  # a step whose X differs from N / (R + Z) by more than this share is flagged
HEADROOM = 0.30  # default share of an instance kept free at the SLO
# Gate series -> the Locust request (type, name) that measures it per step.
LOCUST_NAMES = {
    "yjs_propagation_s": ("YJS", "propagation"),
    "chat_rtt_s": ("SIO", "chat:message:send"),
    "autosave_put_s": ("PUT", "/api/sessions/:id/files/:path/content"),
    "yjs_connect_sync_s": ("YJS", "connect+sync"),
}
_PCT_COLUMNS = {"median": "50%", "p50": "50%", "p66": "66%", "p75": "75%", "p80": "80%", "p90": "90%",
                "p95": "95%", "p98": "98%", "p99": "99%"}  # fmt: skip


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def regression(x: pd.Series, y: pd.Series) -> dict[str, float] | None:
    """Least-squares line y = slope x + intercept with R^2; None with fewer than 3 usable points."""
    keep = np.isfinite(x.to_numpy(dtype=float)) & np.isfinite(y.to_numpy(dtype=float))
    xs, ys = x.to_numpy(dtype=float)[keep], y.to_numpy(dtype=float)[keep]
    if xs.size < 3 or np.ptp(xs) == 0:
        return None
    slope, intercept = np.polyfit(xs, ys, 1)
    predicted = slope * xs + intercept
    total = float(np.sum((ys - ys.mean()) ** 2))
    r2 = 1.0 - float(np.sum((ys - predicted) ** 2)) / total if total > 0 else 0.0
    return {"slope": float(slope), "intercept": float(intercept), "r2": r2, "points": int(xs.size)}


def _step_gate_values(ts: RunSeries, steps: pd.DataFrame, gates: list[Any]) -> tuple[pd.DataFrame, list[str]]:
    """Per step, each gate's value where it can be measured per step; notes for those that cannot."""
    notes = []
    hist = ts.history
    columns = {}
    for gate in gates:
        metric = gate.metric
        values = []
        if metric.side == "server":
            notes.append(f"{gate.label or gate.text}: a server (PromQL) gate is judged over a whole run, not per step")
            continue
        if metric.kind == "latency" and metric.series in LOCUST_NAMES and metric.func in _PCT_COLUMNS:
            kind, name = LOCUST_NAMES[metric.series]
            rows = hist[(hist.get("Type") == kind) & (hist.get("Name") == name)] if not hist.empty else hist
            for _, step in steps.iterrows():
                part = rows[(rows["Timestamp"] >= step["steady_start"]) & (rows["Timestamp"] <= step["steady_end"])]
                col = pd.to_numeric(part[_PCT_COLUMNS[metric.func]], errors="coerce") if not part.empty else None
                values.append(float(col.median()) / 1000.0 if col is not None and col.notna().any() else math.nan)
        elif metric.func == "error_rate":
            values = list(steps["error_share"])
        elif metric.func == "failures":
            values = [(e * x * (s1 - s0)) if _finite(e) and _finite(x) else math.nan
                      for e, x, s0, s1 in zip(steps["error_share"], steps["x_rps"], steps["steady_start"],
                                              steps["steady_end"], strict=True)]  # fmt: skip
        else:
            notes.append(f"{gate.label or gate.text}: not measurable per step from Locust's history")
            continue
        columns[gate.label or gate.text] = (gate, values)
    frame = pd.DataFrame({name: vals for name, (_, vals) in columns.items()}, index=steps.index)
    passes = pd.Series(True, index=steps.index)
    for name, (gate, vals) in columns.items():
        ok = [(not _finite(v)) or gate.holds(v) for v in vals]
        passes &= pd.Series(ok, index=steps.index)
        frame[f"{name} ok"] = ok
    frame["slo_ok"] = passes
    frame["slo_missed"] = [
        ", ".join(name for name, (gate, vals) in columns.items() if _finite(vals[i]) and not gate.holds(vals[i]))
        for i in range(len(steps.index))
    ]
    return frame, notes


def analyse(
    run_dir: Path, slo: Path | None = None, target_editors: int | None = None, headroom: float = HEADROOM
) -> dict[str, Any]:
    """The capacity result document of a run directory (see the module docstring)."""
    ts = RunSeries.load(Path(run_dir))
    problems = list(ts.missing())
    steps = step_table(ts)
    result: dict[str, Any] = {
        "run_dir": str(run_dir),
        "method": {
            "ramp_in": RAMP_RULE,
            "throughput": "X: requests completed per second in the steady part, every request type (Locust totals)",
            "latency": "R mean: exact from Locust's totals; p50/p95/p99: medians of Locust's 10 s sliding-window "
            "percentiles (whole ms) in the steady part",
            "saturation": f"a step is left out of the fit when the Locust tree's mean CPU > {GENERATOR_LIMIT:g} % "
            "of a core, Locust logged its CPU warning, or fewer users ran than the step asked for",
            "usl": "X(N) = lambda N / (1 + sigma (N-1) + kappa N (N-1)), least squares (scipy curve_fit), "
            "bounded sigma in [0,1], kappa >= 0; N* = sqrt((1-sigma)/kappa)",
            "little": f"Z = median over fitted steps of N/X - R; a step whose X differs from N/(R+Z) by more than "
            f"{LITTLE_MARGIN:.0%} is flagged",
            "knee": "Kneedle on mean response time R(N) of the fitted steps (codesync_load/capacity/kneedle.py)",
        },
        "problems": problems,
        "steps": [],
    }
    if steps.empty:
        result["problems"].append(
            f"{run_dir} has no step-K phases: not a run of a step profile (use --profile capacity)"
        )
        result["partial"] = True
        result["verdict_line"] = "capacity (PARTIAL): no steps in the run; nothing to fit"
        return result
    fitted = steps[steps["excluded"] == ""]
    # SLO per step
    n_slo = None
    if slo is not None:
        from codesync_load.gates import load_gates

        spec = load_gates(Path(slo))
        gate_frame, notes = _step_gate_values(ts, steps, list(spec.gates))
        steps = pd.concat([steps, gate_frame], axis=1)
        result["slo"] = {"file": str(slo), "not_applied": notes, "gates": [g.label or g.text for g in spec.gates]}
        ok_users = [int(u) for u, ok, ex in zip(steps["users"], steps["slo_ok"], steps["excluded"], strict=True)
                    if ok and not ex]  # fmt: skip
        # the largest N such that every fitted step up to it passes
        for _, row in steps.sort_values("users").iterrows():
            if row["excluded"]:
                continue
            if not row["slo_ok"]:
                break
            n_slo = int(row["users"])
        result["slo"]["passing_users"] = ok_users
    result["n_at_slo"] = n_slo
    # USL
    fit = None
    try:
        fit = fit_usl(fitted["users"], fitted["x_rps"])
        result["usl"] = fit.to_dict()
    except FitError as err:
        result["problems"].append(f"USL fit: {err} (steps excluded: {int((steps['excluded'] != '').sum())})")
    # Little's law
    think = None
    if not fitted.empty:
        z = (fitted["users"] / fitted["x_rps"] - fitted["r_mean_s"]).replace([np.inf, -np.inf], np.nan).dropna()
        think = float(z.median()) if not z.empty else None
    little = []
    for _, row in steps.iterrows():
        if think is None or not (_finite(row["x_rps"]) and _finite(row["r_mean_s"])) or row["users"] <= 0:
            little.append(math.nan)
            continue
        predicted = row["users"] / (row["r_mean_s"] + think) if row["r_mean_s"] + think > 0 else math.nan
        little.append((row["x_rps"] - predicted) / predicted if _finite(predicted) and predicted else math.nan)
    steps["little_dev"] = little
    steps["little_flag"] = [_finite(d) and abs(d) > LITTLE_MARGIN for d in little]
    result["think_time_s"] = think
    # knee
    result["knee_users"] = knee(fitted["users"], fitted["r_mean_s"]) if len(fitted) >= 3 else None
    # regressions on the target's own metrics
    regs: dict[str, Any] = {}
    mem_editor = regression(steps["connections"], steps["target_rss_bytes"])
    mem_doc = regression(steps["documents"], steps["target_rss_bytes"])
    activity = steps["messages_ps"].fillna(0) + steps["server_http_rps"]
    cpu = regression(activity, steps["target_cpu_cores"])
    if mem_editor:
        regs["memory_per_connection_bytes"] = mem_editor
    if mem_doc:
        regs["memory_per_document_bytes"] = mem_doc
    if cpu:
        regs["cpu_seconds_per_1000_messages"] = {**cpu, "slope": cpu["slope"] * 1000.0}
    if not regs:
        result["problems"].append("no regression on the target's metrics: the run has no metrics snapshot")
    result["regressions"] = regs
    # database and Redis: grew with the load, not saturated (a line through the steps fits)
    backing = {}
    for name in ("pg_xact_ps", "redis_commands_ps"):
        r = regression(steps["server_http_rps"], steps[name])
        if r:
            backing[name] = r
    result["backing_services"] = backing
    # projection
    if target_editors:
        result["projection"] = project(steps, n_slo, fit, target_editors, headroom, ts, backing)
    result["steps"] = [
        {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
        for row in steps.to_dict(orient="records")
    ]
    result["partial"] = bool(result["problems"])
    result["verdict_line"] = verdict_line(result)
    return result


def _editor_share(ts: RunSeries) -> float:
    import json

    try:
        weights = json.loads((ts.run_dir / "run.json").read_text())["profile"]["weights"]
        total = sum(weights.values())
        return weights.get("editor", 0) / total if total else 0.0
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return 0.0


def project(
    steps: pd.DataFrame, n_slo: int | None, fit: Any, target: int, headroom: float, ts: RunSeries, backing: dict
) -> dict[str, Any]:
    """Instances needed for `target` concurrent editors at the SLO, each assumption written out."""
    share = _editor_share(ts)
    per_instance_users = n_slo
    basis = "the largest step that passed the SLO"
    tested = float(steps["users"].max()) if not steps.empty else 0.0
    beyond = ""
    if per_instance_users is None and fit is not None:
        if math.isfinite(fit.n_star) and fit.n_star <= 1.5 * tested:
            per_instance_users, basis = int(fit.n_star), "N* of the USL fit (no step passed the SLO)"
        else:  # a peak far past the last step is an extrapolation, not a measurement
            beyond = f"the fit's peak N* {fit.n_star:.3g} lies beyond 1.5 x the largest step ({tested:g} users)"
    assumptions = [
        "instances scale linearly behind sticky sessions (a document's editors on one instance); no cross-instance "
        "cost is measured by a one-instance run",
        f"editors are {share:.0%} of the users, as in the run's profile; the other users load the instance too",
        f"{headroom:.0%} of each instance is kept free (bursts, a lost instance, deploys)",
        f"per instance: {per_instance_users} users ({basis})",
    ]
    for name, r in backing.items():
        what = "PostgreSQL transactions/s" if name.startswith("pg") else "Redis commands/s"
        verdict = "grew in line with the load" if r["r2"] >= 0.8 else "did NOT grow in line with the load"
        assumptions.append(f"the database and Redis are not the bottleneck: {what} {verdict} (R2 {r['r2']:.2f})")
    if not backing:
        assumptions.append("the database and Redis are not the bottleneck: NOT checked (no exporter series)")
    if not per_instance_users or share <= 0:
        why = "no editors in the profile" if share <= 0 else "no step passed the SLO and no USL peak was fitted"
        if beyond and share > 0:
            why = f"no step passed the SLO and {beyond}: run more users"
        return {"target_editors": target, "instances": None, "assumptions": assumptions, "problem": why}
    editors_per_instance = per_instance_users * share * (1.0 - headroom)
    instances = math.ceil(target / editors_per_instance) if editors_per_instance > 0 else None
    return {
        "target_editors": target,
        "editors_per_instance": editors_per_instance,
        "instances": instances,
        "headroom": headroom,
        "assumptions": assumptions,
    }


def verdict_line(result: dict[str, Any]) -> str:
    parts = [f"N at SLO {result.get('n_at_slo') if result.get('n_at_slo') is not None else 'none'}"]
    usl = result.get("usl")
    if usl:
        parts.append(
            f"N* {usl['n_star']:.3g} (USL sigma {usl['sigma']:.3g}, kappa {usl['kappa']:.3g}, R2 {usl['r2']:.2f})"
        )
    else:
        parts.append("N* not fitted")
    parts.append(f"knee {result['knee_users']:g}" if result.get("knee_users") is not None else "no knee")
    proj = result.get("projection")
    if proj:
        inst = proj.get("instances")
        parts.append(f"{proj['target_editors']} editors need {inst if inst else '?'} instances")
    flag = " (PARTIAL)" if result.get("partial") else ""
    return "capacity" + flag + ": " + "; ".join(parts)
