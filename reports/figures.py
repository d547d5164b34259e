"""The run report's charts, one function per section, from a run directory's records.

    >>> charts = run_charts(RunSeries.load(run_dir), panel_results)
    >>> [c.name for c in charts["load"]]       # sections: load, latency, propagation, panels, alerts, resources
    ['r1-load']

Each section is a list of Chart (reports.plots): inline SVG for the HTML report, PNG copies
for the Markdown. A chart never fails the report: what a run directory lacks (no snapshot,
no Locust history, an empty series) is drawn as a box that says so, and `RunSeries.missing()`
lists it in the report. The panel charts put every dashboard panel's own series (from the
snapshot) beside the harness's own measurement of the same quantity, where the harness has
one: Locust's request rate and failures, its latency percentiles, the ledger's connection
and session levels.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from reports.plots import Chart, empty, figure, finish, shade_phases
from reports.timeseries import RunSeries
from reports.witnesses import witness_charts

SECTIONS = ("load", "latency", "propagation", "panels", "alerts", "resources", "witnesses")
# Request types drawn in the latency chart: the most frequent ones (a legend of 20 is unreadable).
MAX_TYPES = 8
# Points of an empirical CDF drawn (quantiles of the samples): a million samples would make an
# SVG of a million vertices; 1,000 quantiles draw the same curve.
CDF_POINTS = 1000
PROPAGATION_SERIES = ("yjs_propagation_s", "chat_rtt_s")


# Points per drawn line: an hour at 1 s is 3,600 points, more than a chart 800 px wide shows;
# longer series are drawn as means of equal blocks (a deterministic thinning, no point dropped
# from the mean).
MAX_LINE_POINTS = 600


def _rel(values: Any, t0: float) -> np.ndarray:
    return np.asarray(values, dtype=float) - t0


def thin(x: Any, y: Any, limit: int = MAX_LINE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) with at most `limit` points: block means of y at each block's first x."""
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if xs.size <= limit:
        return xs, ys
    k = -(-xs.size // limit)
    cut = xs.size - xs.size % k
    blocks = ys[:cut].reshape(-1, k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN block is NaN, drawn as a gap
        means = np.nanmean(blocks, axis=1)
    return xs[:cut:k], means


def _label_value(series: str, key: str) -> str:
    for part in str(series).split(","):
        name, _, value = part.partition("=")
        if name == key:
            return value
    return str(series) or "all"


def _plot_wide(
    ax: Any, wide: pd.DataFrame, t0: float, scale: float = 1.0, label_key: str = "", prefix: str = ""
) -> int:
    """One line per column of a snapshot's wide frame; returns how many were drawn."""
    drawn = 0
    for column in sorted(wide.columns, key=str):
        values = wide[column].to_numpy(dtype=float) * scale
        if not np.isfinite(values).any():
            continue
        name = _label_value(column, label_key) if label_key else (str(column) or "all")
        ax.plot(*thin(_rel(wide.index, t0), values), lw=1.1, label=f"{prefix}{name}")
        drawn += 1
    return drawn


def _legend(ax: Any) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", ncol=2, frameon=False)


def _snapshot_or_empty(ax: Any, ts: RunSeries, name: str) -> pd.DataFrame:
    wide = ts.snapshot.wide(name) if ts.snapshot is not None else pd.DataFrame()
    if wide.empty:
        status = ts.snapshot.status(name) if ts.snapshot is not None else "no snapshot"
        empty(ax, f"{name}: {status}")
    return wide


def load_chart(ts: RunSeries, slug: str) -> Chart:
    """Users and open connections; HTTP requests/s; Socket.IO and Yjs messages/s; Yjs updates/s."""
    fig, axes = figure(2, 2, width=11.0, height=2.5)
    t0 = ts.t0
    ax = axes[0][0]
    users = ts.users()
    if not users.empty:
        ax.step(_rel(users["t"], t0), users["users"], where="post", lw=1.4, label="Locust users")
    conns = ts.connections()
    for channel, rows in conns.groupby("channel", sort=True):
        ax.step(_rel(rows["t"], t0), rows["open"], where="post", lw=1.0, label=f"{channel} connections (ledger)")
    if users.empty and conns.empty:
        empty(ax, "no Locust history and no stamped connections in the ledger")
    ax.set_title("users and open connections")
    _legend(ax)
    ax = axes[0][1]
    wide = _snapshot_or_empty(ax, ts, "http_rps")
    if not wide.empty:
        ax.plot(*thin(_rel(wide.index, t0), wide.sum(axis=1, min_count=1)), lw=1.4, label="target: all routes")
    agg = ts.aggregated()
    if not agg.empty:
        ax.plot(*thin(_rel(agg["t"], t0), agg["rps"]), lw=1.0, ls="--", label="Locust: all request types")
    ax.set_title("HTTP requests/s")
    _legend(ax)
    ax = axes[1][0]
    wide = _snapshot_or_empty(ax, ts, "ws_messages_ps")
    if not wide.empty:
        _plot_wide(ax, wide, t0)
        for line in ax.get_lines():
            line.set_label(line.get_label().replace("direction=", "").replace("type=", ""))
    ax.set_title("WebSocket messages/s at the target, per channel and direction")
    _legend(ax)
    ax = axes[1][1]
    wide = _snapshot_or_empty(ax, ts, "yjs_operations_ps")
    if not wide.empty:
        _plot_wide(ax, wide, t0, prefix="persisted Yjs updates/s ")
    ax.set_title("Yjs updates/s (codesync_yjs_operations_total)")
    _legend(ax)
    for row in axes:
        for ax in row:
            shade_phases(ax, ts.phases, t0)
            ax.set_xlabel("s since the load started")
    return finish(fig, f"{slug}-load", "load offered over time")


def latency_chart(ts: RunSeries, slug: str) -> Chart:
    """Locust's p50/p95/p99 per request type over time (the most frequent MAX_TYPES types)."""
    fig, axes = figure(1, 3, width=11.0, height=2.8, sharey=True)
    rows = ts.client_latency()
    t0 = ts.t0
    if rows.empty:
        for ax in axes[0]:
            empty(ax, "no Locust stats history in the run directory")
        return finish(fig, f"{slug}-latency", "client latency over time")
    rows = rows.assign(kind=(rows["type"] + " " + rows["name"]).str.strip())
    volume = rows.groupby("kind")["rps"].sum().sort_values(ascending=False, kind="stable")
    kinds = sorted(volume.index[:MAX_TYPES])
    for ax, col in zip(axes[0], ("p50", "p95", "p99"), strict=True):
        for kind in kinds:
            part = rows[rows["kind"] == kind]
            ax.plot(*thin(_rel(part["t"], t0), part[col] * 1000.0), lw=1.0, label=kind if col == "p50" else None)
        ax.set_title(f"client {col} per request type (ms)")
        ax.set_yscale("symlog", linthresh=1.0)
        shade_phases(ax, ts.phases, t0)
        ax.set_xlabel("s since the load started")
    axes[0][0].legend(loc="upper left", fontsize=6, frameon=False)
    return finish(fig, f"{slug}-latency", "client latency percentiles per request type over time")


def propagation_chart(ts: RunSeries, slug: str) -> Chart:
    """Empirical CDF of edit propagation (and chat round trips), p50/p95/p99 marked."""
    fig, ax = figure(1, 1, width=8.0, height=3.0)
    drawn = False
    for name in PROPAGATION_SERIES:
        values = ts.samples(name)
        if values.size == 0:
            continue
        probs = np.linspace(0.0, 1.0, min(CDF_POINTS, values.size))
        xs = np.quantile(values, probs) * 1000.0
        (line,) = ax.plot(xs, probs, lw=1.4, label=f"{name} (n={values.size:,})")
        for q in (50, 95, 99):
            x = float(np.percentile(values, q)) * 1000.0
            ax.axvline(x, color=line.get_color(), lw=0.7, ls=":")
            ax.annotate(f"p{q} {x:.3g} ms", (x, q / 100.0), fontsize=6.5, color=line.get_color(),
                        xytext=(3, -9), textcoords="offset points")  # fmt: skip
        drawn = True
    if drawn:
        ax.set_xscale("log")
        ax.set_xlabel("ms (log scale)")
        ax.set_ylabel("share of samples")
        _legend(ax)
    else:
        empty(ax, "no edit-propagation or chat samples in the ledger (no edit was seen by another client)")
    ax.set_title("edit propagation: distribution (raw ledger samples)")
    return finish(fig, f"{slug}-propagation", "edit-propagation distribution")


def _harness_line(ax: Any, ts: RunSeries, title: str, t0: float) -> str:
    """Draw the harness's own measurement of the quantity a panel shows; returns what it drew."""
    key = title.lower()
    agg = ts.aggregated()
    if "request rate" in key and not agg.empty:
        ax.plot(*thin(_rel(agg["t"], t0), agg["rps"]), "k--", lw=1.0, label="harness: Locust requests/s (all types)")
        return "Locust's requests/s, every request type (HTTP and WebSocket operations)"
    if "error rate" in key and not agg.empty:
        share = (agg["fps"] / agg["rps"].where(agg["rps"] > 0)).fillna(0.0)
        ax.plot(*thin(_rel(agg["t"], t0), share), "k--", lw=1.0, label="harness: Locust failure share")
        return "Locust's failures / requests"
    if ("response time" in key or "latency" in key) and not agg.empty:
        ax.plot(*thin(_rel(agg["t"], t0), agg["p95"]), "k--", lw=1.0, label="harness: Locust p95 (s)")
        return "Locust's p95 over all request types (seconds)"
    if "websocket" in key:
        conns = ts.connections()
        for channel, rows in conns.groupby("channel", sort=True):
            ax.step(_rel(rows["t"], t0), rows["open"], where="post", ls="--", lw=1.0, label=f"ledger: {channel} open")
        return "the ledger's open connections per channel (this run's only)" if not conns.empty else ""
    if "session" in key:
        sessions = ts.sessions()
        if not sessions.empty:
            ax.step(_rel(sessions["t"], t0), sessions["open"], "k--", where="post", lw=1.0, label="ledger: sessions")
            return "the ledger's sessions created minus deleted (this run's only)"
    return ""


def panel_charts(ts: RunSeries, slug: str, titles: Sequence[str], verdicts: dict[str, str]) -> list[Chart]:
    """One small chart per dashboard panel: its series (snapshot) and the harness's measurement."""
    charts = []
    snap = ts.snapshot
    t0 = ts.t0
    queries = [q["name"] for q in (snap.manifest.get("queries") or [])] if snap is not None else []
    panel_names = [q for q in queries if q.startswith("panel:")]
    titles = list(titles) or sorted({q.removeprefix("panel:").rsplit("#", 1)[0] for q in panel_names})
    for i, title in enumerate(titles):
        fig, ax = figure(1, 1, width=5.4, height=2.3)
        drawn = 0
        for name in [q for q in panel_names if q.removeprefix("panel:").rsplit("#", 1)[0] == title]:
            wide = snap.wide(name) if snap is not None else pd.DataFrame()
            drawn += _plot_wide(ax, wide.iloc[:, :6], t0, prefix="panel: ") if not wide.empty else 0
        harness = _harness_line(ax, ts, title, t0)
        if not drawn:
            status = "no snapshot" if snap is None or not snap.present else "no series in the window"
            ax.text(0.5, 0.9, f"panel: {status}", transform=ax.transAxes, ha="center", fontsize=7, color="#777777")
        if not harness:
            ax.text(0.5, 0.02, "no harness measurement of this quantity over time", transform=ax.transAxes,
                    ha="center", fontsize=6.5, color="#777777")  # fmt: skip
        shade_phases(ax, ts.phases, t0)
        verdict = verdicts.get(title, "")
        ax.set_title(f"{title}" + (f"  [{verdict}]" if verdict else ""))
        ax.set_xlabel("s since the load started")
        _legend(ax)
        charts.append(finish(fig, f"{slug}-panel-{i}", f"dashboard panel {title}", png=False))
    return charts


def alerts_chart(ts: RunSeries, slug: str, expected: dict[str, float] | None = None) -> Chart:
    """Each alert's pending and firing spans from the snapshot's ALERTS, and when it was expected."""
    rows = ts.snapshot.frame("alerts") if ts.snapshot is not None else pd.DataFrame()
    t0 = ts.t0
    step = float((ts.snapshot.manifest if ts.snapshot is not None else {}).get("step_s") or 1.0)
    names = sorted({_label_value(s, "alertname") for s in rows["series"]}) if not rows.empty else []
    names = sorted(set(names) | set(expected or {}))
    fig, ax = figure(1, 1, width=11.0, height=max(1.4, 0.32 * len(names) + 0.9))
    if not names:
        empty(ax, "no alert was pending or firing in the window" if ts.snapshot and ts.snapshot.present
              else "no metrics snapshot: alert states unknown")  # fmt: skip
    for y, name in enumerate(names):
        for state, color in (("pending", "#e0a100"), ("firing", "#c62828")):
            mask = rows["series"].map(lambda s, n=name, st=state: _label_value(s, "alertname") == n
                                      and _label_value(s, "alertstate") == st) if not rows.empty else []  # fmt: skip
            times = np.sort(rows[mask]["t"].to_numpy(dtype=float)) if len(mask) else np.array([])
            if times.size:
                breaks = np.where(np.diff(times) > 1.5 * step)[0]
                starts = np.r_[times[0], times[breaks + 1]]
                ends = np.r_[times[breaks], times[-1]] + step
                ax.broken_barh([(s - t0, e - s) for s, e in zip(starts, ends, strict=True)], (y - 0.35, 0.7),
                               color=color, label=state if y == 0 else None)  # fmt: skip
        if expected and name in expected:
            ax.plot([expected[name] - t0], [y], marker="v", color="k", label="expected" if y == 0 else None)
    if names:
        ax.set_yticks(range(len(names)), names)
        ax.set_ylim(-0.6, len(names) - 0.4)
        shade_phases(ax, ts.phases, t0)
        _legend(ax)
    ax.set_title("alerts: pending (amber) and firing (red); a span that ends is resolved")
    ax.set_xlabel("s since the load started")
    return finish(fig, f"{slug}-alerts", "alerts timeline")


def resources_chart(ts: RunSeries, slug: str) -> Chart:
    """Target CPU, memory, open fds per job; node CPU and the load generator's CPU."""
    fig, axes = figure(1, 3, width=11.0, height=2.8)
    t0 = ts.t0
    jobs = r"codesync-backend|codesync-yjs"
    ax = axes[0][0]
    wide = _snapshot_or_empty(ax, ts, "process_cpu")
    if not wide.empty:
        wide = wide[[c for c in wide.columns if _label_value(c, "job") in jobs.split("|")]]
        _plot_wide(ax, wide, t0, label_key="job", prefix="target ")
    node = ts.snapshot.wide("node_cpu_busy") if ts.snapshot is not None else pd.DataFrame()
    if not node.empty:
        ax.plot(*thin(_rel(node.index, t0), node.iloc[:, 0]), lw=1.0, color="#777777", label="machine (node exporter)")
    gen = ts.generator()
    if not gen.empty:
        ax.plot(*thin(_rel(gen["t"], t0), gen["cpu_percent"] / 100.0), lw=1.0, ls="--", label="load generator (Locust)")
    ax.set_title("CPU (cores)")
    _legend(ax)
    ax = axes[0][1]
    wide = _snapshot_or_empty(ax, ts, "process_rss_bytes")
    if not wide.empty:
        wide = wide[[c for c in wide.columns if _label_value(c, "job") in jobs.split("|")]]
        _plot_wide(ax, wide, t0, scale=1 / 2**20, label_key="job", prefix="target ")
    if not gen.empty:
        ax.plot(*thin(_rel(gen["t"], t0), gen["rss_bytes"] / 2**20), lw=1.0, ls="--", label="load generator (Locust)")
    ax.set_title("resident memory (MiB)")
    _legend(ax)
    ax = axes[0][2]
    wide = _snapshot_or_empty(ax, ts, "process_open_fds")
    if not wide.empty:
        wide = wide[[c for c in wide.columns if _label_value(c, "job") in jobs.split("|")]]
        _plot_wide(ax, wide, t0, label_key="job", prefix="target ")
    ax.set_title("open file descriptors")
    _legend(ax)
    for ax in axes[0]:
        shade_phases(ax, ts.phases, t0)
        ax.set_xlabel("s since the load started")
    return finish(fig, f"{slug}-resources", "target and load generator resources")


def run_charts(
    ts: RunSeries, slug: str, panel_titles: Sequence[str] = (), verdicts: dict[str, str] | None = None
) -> dict[str, list[Chart]]:
    """Every section's charts for one run, keyed by SECTIONS."""
    return {
        "load": [load_chart(ts, slug)],
        "latency": [latency_chart(ts, slug)],
        "propagation": [propagation_chart(ts, slug)],
        "panels": panel_charts(ts, slug, panel_titles, verdicts or {}),
        "alerts": [alerts_chart(ts, slug)],
        "resources": [resources_chart(ts, slug)],
        "witnesses": witness_charts(ts.run_dir, slug),
    }


# The checks that hold the ledger against the target's metrics: the reconciliation table.
RECONCILE_PREFIXES = ("metrics-", "counters-", "gauges-", "contract-metrics", "latency-quantiles")


def is_reconciliation(check_name: str) -> bool:
    return check_name.startswith(RECONCILE_PREFIXES) and check_name != "metrics-token-enforced"


def report_charts(run_dirs: Sequence[Any], doc: dict[str, Any]) -> tuple[dict[str, list[Chart]], list[str]]:
    """Every section's charts over the report's runs, and what could not be drawn (one line each).

    Panel titles and per-panel verdicts come from the panel check's evidence when it ran, so
    the charts name the verdict the table gives; without it, every panel the snapshot holds.
    """
    from pathlib import Path

    titles: list[str] = []
    verdicts: dict[str, str] = {}
    for result in doc.get("dashboard_panels") or []:
        ev = result.get("evidence") or {}
        columns = list(ev.get("columns") or [])
        if "panel" not in columns:
            continue
        at, agrees = columns.index("panel"), columns.index("agrees") if "agrees" in columns else None
        for row in ev.get("rows") or []:
            title = str(row[at])
            if title not in titles:
                titles.append(title)
            if agrees is not None and row[agrees] in ("yes", "no"):
                worse = "no" if verdicts.get(title) == "disagrees" or row[agrees] == "no" else "yes"
                verdicts[title] = "agrees" if worse == "yes" else "disagrees"
    sections: dict[str, list[Chart]] = {name: [] for name in SECTIONS}
    missing: list[str] = []
    for i, run_dir in enumerate(run_dirs):
        ts = RunSeries.load(Path(run_dir))
        slug = f"run{i + 1}"
        for name, charts in run_charts(ts, slug, titles, verdicts).items():
            sections[name] += charts
        missing += [f"{Path(run_dir).name}: {line}" for line in ts.missing()]
    return sections, missing
