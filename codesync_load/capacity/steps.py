"""Per-step steady-state figures of a step run, the ramp-in of each step dropped.

    >>> steps = step_table(RunSeries.load(run_dir))
    >>> steps[["step", "users", "x_rps", "r_mean_s", "r_p95_s", "excluded"]]

Each `step-K` phase of the ledger is one step. Its first RAMP_SHARE of the step (at least the
time the new users took to start at the profile's spawn rate, plus RAMP_SETTLE_S) is the
ramp-in and is dropped: new users sign in and open connections then, which is not the load
the step holds. From the rest (the steady part):

- throughput X and mean response time R come from Locust's cumulative totals at both ends
  of the steady part (exact: requests completed / seconds; summed response time / requests),
  all request types together (HTTP and WebSocket operations, as the clients saw them);
- p50/p95/p99 are the medians of Locust's sliding-window percentiles sampled in the steady
  part (whole milliseconds: an approximation, said so in the report);
- the target's side (HTTP requests/s, Yjs updates/s, rate-limit hits, CPU cores, RSS, open
  connections and documents, database and Redis throughput) is the mean of the metrics
  snapshot's points in the steady part, when a snapshot exists;
- the generator's CPU is the Locust tree's mean and peak from generator.csv.

A step is excluded from the fit (`excluded` names why) when the generator was saturated:
its CPU above GENERATOR_LIMIT percent of a core (mean of the steady part), a Locust "CPU usage
above 90%" warning logged during the step, or fewer users running than the step asked for
(the generator fell behind its pacing). A weak load machine is never reported as a weak server.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reports.timeseries import RunSeries

RAMP_SHARE = 0.25
RAMP_SETTLE_S = 2.0
GENERATOR_LIMIT = 90.0
STEP_RE = re.compile(r"^step-(\d+)$")
_LOG_TIME = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3})\].*CPU usage above")

RAMP_RULE = (
    f"the first max({RAMP_SHARE:.0%} of the step, new users / spawn rate + {RAMP_SETTLE_S:g} s) of every step "
    "is dropped as ramp-in (users signing in and connecting); figures are from the rest"
)


def _mean_between(frame: pd.DataFrame, column: str, start: float, end: float) -> float:
    if frame is None or frame.empty or column not in frame:
        return float("nan")
    part = frame[(frame["t"] >= start) & (frame["t"] <= end)][column]
    return float(part.mean()) if not part.empty else float("nan")


def _snap_mean(ts: RunSeries, name: str, start: float, end: float, jobs: tuple[str, ...] = ()) -> float:
    """Mean over the steady part of a snapshot query summed across its series (or only `jobs`)."""
    if ts.snapshot is None:
        return float("nan")
    wide = ts.snapshot.wide(name)
    if wide.empty:
        return float("nan") if ts.snapshot.status(name) not in ("empty",) else 0.0
    if jobs:
        wide = wide[[c for c in wide.columns if any(f"job={j}" in str(c).split(",") for j in jobs)]]
        if wide.empty:
            return float("nan")
    part = wide[(wide.index >= start) & (wide.index <= end)]
    total = part.sum(axis=1, min_count=1)
    return float(total.mean()) if not total.empty else float("nan")


def cpu_warnings(run_dir: Path) -> list[float]:
    """Epoch seconds of Locust's "CPU usage above 90%" warnings in locust.log (local time stamps)."""
    import time as _time

    try:
        lines = (Path(run_dir) / "locust.log").read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        m = _LOG_TIME.match(line)
        if m:
            stamp = _time.mktime(_time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")) + int(m.group(2)) / 1000
            out.append(stamp)
    return out


def planned_steps(ts: RunSeries) -> dict[str, dict[str, Any]]:
    """Stage name -> {users, spawn_rate} from run.json's profile (what each step asked for)."""
    run = {}
    try:
        import json

        run = json.loads((ts.run_dir / "run.json").read_text())
    except (FileNotFoundError, ValueError):
        pass
    stages = ((run.get("profile") or {}).get("stages")) or []
    return {str(s.get("name")): s for s in stages if isinstance(s, dict)}


def step_table(ts: RunSeries) -> pd.DataFrame:
    """One row per step (see the module docstring); empty when the run has no step-K phases."""
    plan = planned_steps(ts)
    agg = ts.aggregated()
    hist = ts.history
    totals = pd.DataFrame()
    if not hist.empty and "Name" in hist:
        rows = hist[hist["Name"] == "Aggregated"]
        totals = pd.DataFrame(
            {
                "t": rows["Timestamp"].astype(float),
                "count": pd.to_numeric(rows["Total Request Count"], errors="coerce"),
                "failures": pd.to_numeric(rows["Total Failure Count"], errors="coerce"),
                "avg_ms": pd.to_numeric(rows["Total Average Response Time"], errors="coerce"),
            }
        ).sort_values("t")
    gen = ts.generator()
    warnings = cpu_warnings(ts.run_dir)
    out = []
    previous_users = 0
    for phase in ts.phases:
        m = STEP_RE.match(str(phase.get("name")))
        if not m or phase.get("end") is None:
            continue
        start, end = float(phase["start"]), float(phase["end"])
        stage = plan.get(phase["name"], {})
        users = int(stage.get("users") or 0)
        spawn = float(stage.get("spawn_rate") or 0) or 1.0
        ramp = max(RAMP_SHARE * (end - start), max(users - previous_users, 0) / spawn + RAMP_SETTLE_S)
        previous_users = users
        s0, s1 = start + ramp, end
        row: dict[str, Any] = {"step": int(m.group(1)), "phase": phase["name"], "start": start, "end": end}
        row.update({"steady_start": s0, "steady_end": s1, "users": users})
        running = _mean_between(agg, "users", s0, s1)
        row["users_running"] = running
        x = r_mean = err = float("nan")
        if not totals.empty:
            part = totals[(totals["t"] >= s0) & (totals["t"] <= s1)].dropna()
            if len(part) >= 2:
                a, b = part.iloc[0], part.iloc[-1]
                done = b["count"] - a["count"]
                seconds = b["t"] - a["t"]
                if seconds > 0 and done > 0:
                    x = done / seconds
                    r_mean = (b["avg_ms"] * b["count"] - a["avg_ms"] * a["count"]) / done / 1000.0
                    err = (b["failures"] - a["failures"]) / done
        row.update({"x_rps": x, "r_mean_s": r_mean, "error_share": err})
        for q in ("p50", "p95", "p99"):
            part = agg[(agg["t"] >= s0) & (agg["t"] <= s1)][q] if not agg.empty else pd.Series(dtype=float)
            row[f"r_{q}_s"] = float(part.median()) if not part.dropna().empty else float("nan")
        jobs = ("codesync-backend", "codesync-yjs")
        row["server_http_rps"] = _snap_mean(ts, "http_rps", s0, s1)
        row["yjs_updates_ps"] = _snap_mean(ts, "yjs_operations_ps", s0, s1)
        row["messages_ps"] = _snap_mean(ts, "ws_messages_ps", s0, s1)
        limited = _snap_mean(ts, "rate_limit_ps", s0, s1)
        row["rate_limit_share"] = limited / row["server_http_rps"] if row["server_http_rps"] > 0 else float("nan")
        row["target_cpu_cores"] = _snap_mean(ts, "process_cpu", s0, s1, jobs)
        row["target_rss_bytes"] = _snap_mean(ts, "process_rss_bytes", s0, s1, jobs)
        row["connections"] = _snap_mean(ts, "ws_connections_active", s0, s1)
        row["documents"] = _snap_mean(ts, "yjs_documents_active", s0, s1)
        row["pg_xact_ps"] = _snap_mean(ts, "pg_xact_ps", s0, s1)
        row["redis_commands_ps"] = _snap_mean(ts, "redis_commands_ps", s0, s1)
        row["generator_cpu_mean"] = _mean_between(gen, "cpu_percent", s0, s1)
        part = gen[(gen["t"] >= s0) & (gen["t"] <= s1)]["cpu_percent"] if not gen.empty else pd.Series(dtype=float)
        row["generator_cpu_peak"] = float(part.max()) if not part.empty else float("nan")
        why = []
        if row["generator_cpu_mean"] > GENERATOR_LIMIT:
            why.append(f"load generator at {row['generator_cpu_mean']:.0f} % CPU")
        if any(start <= w <= end for w in warnings):
            why.append("Locust logged its CPU warning")
        if users and np.isfinite(running) and running < users - 0.5:
            why.append(f"{running:.1f} of {users} users running (generator behind)")
        if not np.isfinite(x):
            why.append("no Locust totals in the steady part")
        row["excluded"] = "; ".join(why)
        out.append(row)
    return pd.DataFrame(out)
