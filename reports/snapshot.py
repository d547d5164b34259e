"""The metrics a report needs, copied out of Prometheus into the run directory while it is up.

    >>> manifest = capture("http://127.0.0.1:9090", run_dir)        # end of run / gate / verify
    >>> snap = read_snapshot(run_dir)                                 # days later, stack gone
    >>> snap.frame("process_cpu").head()                             # query, series, t, value
    >>> snap.missing()                                               # ["alerts: no snapshot taken ..."]

Why: a run directory outlives the stack that measured it. The reports and `codesync-load
capacity --from RUN` read the target's own series (the contract metrics, each target job's
CPU/RSS/fds, the node's CPU, every dashboard panel's range result, the `ALERTS` states) from
here, never from a Prometheus that may be gone. Layout: `snapshot/series.csv.gz`, one long
table (query name, series labels, epoch time, value) written by pandas, and
`snapshot/manifest.json`, which names every query, its PromQL, the window, the step and what
came back (ok with n series, empty, or the error), so a reader can say which part is missing
and why. A query that fails is recorded and the others are still taken: a partial snapshot
is worth more than none.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd

SCHEMA = "codesync-snapshot/1"
SNAPSHOT_DIR = "snapshot"
SERIES_FILE = "series.csv.gz"
MANIFEST_FILE = "manifest.json"
TARGET_JOBS = 'job=~"codesync-backend|codesync-yjs"'
# Seconds of series kept before the first phase and after the last: the report shows the
# level the load started from and what it settled to.
PAD_S = 15.0
# Range queries are asked for at most this many points per series (Prometheus refuses > 11,000).
MAX_POINTS = 2000

# name -> PromQL with `{rate}` for the rate window. These are what the report's charts and the
# capacity analysis read; dashboard panels are added per panel (`panel:<title>#<n>`).
QUERIES: dict[str, str] = {
    "http_rps": f"sum by (method, route) (rate(codesync_http_requests_total{{{TARGET_JOBS}}}[{{rate}}]))",
    "http_status_rps": f"sum by (status_code) (rate(codesync_http_requests_total{{{TARGET_JOBS}}}[{{rate}}]))",
    "http_p95_s": "histogram_quantile(0.95, sum by (le) "
    f"(rate(codesync_http_request_duration_seconds_bucket{{{TARGET_JOBS}}}[{{rate}}])))",
    "ws_messages_ps": f"sum by (type, direction) (rate(codesync_websocket_messages_total{{{TARGET_JOBS}}}[{{rate}}]))",
    "yjs_operations_ps": f"sum(rate(codesync_yjs_operations_total{{{TARGET_JOBS}}}[{{rate}}]))",
    "ws_connections_active": f"sum by (type) (codesync_websocket_connections_active{{{TARGET_JOBS}}})",
    "yjs_documents_active": f"sum(codesync_yjs_documents_active{{{TARGET_JOBS}}})",
    "sessions_active": f"sum(codesync_sessions_active{{{TARGET_JOBS}}})",
    "rate_limit_ps": f"sum by (type) (rate(codesync_rate_limit_hits_total{{{TARGET_JOBS}}}[{{rate}}]))",
    "errors_ps": f"sum by (code) (rate(codesync_errors_total{{{TARGET_JOBS}}}[{{rate}}]))",
    "process_cpu": "sum by (job) (rate(process_cpu_seconds_total[{rate}]))",
    "process_rss_bytes": "sum by (job) (process_resident_memory_bytes)",
    "process_open_fds": "sum by (job) (process_open_fds)",
    "node_cpu_busy": 'sum(rate(node_cpu_seconds_total{mode!="idle"}[{rate}]))',
    "node_cpus": 'count(node_cpu_seconds_total{mode="idle"})',
    "pg_xact_ps": "sum(rate(pg_stat_database_xact_commit[{rate}]))",
    "redis_commands_ps": "sum(rate(redis_commands_processed_total[{rate}]))",
    "alerts": "ALERTS",
}


def snapshot_dir(run_dir: Path) -> Path:
    return Path(run_dir) / SNAPSHOT_DIR


def load_window(run_dir: Path) -> tuple[float, float] | None:
    """(first phase start, last phase end) from the run's ledger or phases.json; None if neither says."""
    for name in ("ledger.json", "phases.json"):
        try:
            doc = json.loads((Path(run_dir) / name).read_text())
        except (FileNotFoundError, ValueError):
            continue
        phases = doc.get("phases") if isinstance(doc, dict) else doc
        starts = [p["start"] for p in phases or [] if p.get("start") is not None]
        ends = [p["end"] for p in phases or [] if p.get("end") is not None]
        if starts and ends:
            return min(starts), max(ends)
    return None


def _step(span_s: float, scrape_s: float) -> float:
    """The range-query step: the scrape interval, coarser only to stay under MAX_POINTS."""
    return float(max(1, math.ceil(max(scrape_s, span_s / MAX_POINTS))))


def grid_start(start: float, end: float, step: float) -> float:
    """The first point of a range query whose evaluation grid ends exactly at `end`.

    Prometheus evaluates at start, start+step, ... up to end. Anchored at the start, the last
    point can fall up to one step before the scrape that followed the load, and a series born
    in a short load then holds one sample at every point: its rate is empty (CI saw `http_rps`
    empty after a 14 s smoke run). Anchored at the end, the last point sees that scrape.
    """
    return end - math.ceil(round((end - start) / step, 9)) * step


def _labels(labels: dict[str, str]) -> str:
    """A series' identity as one stable string (`a=1,b=2`, sorted; `__name__` dropped)."""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "__name__")


def _panel_queries(dashboard: Path, rate: str, step: float, span: float, scrape: float) -> dict[str, str]:
    from verify.assets import load_dashboard
    from verify.grafana import GrafanaTimes, substitute

    board = load_dashboard(dashboard)
    times = GrafanaTimes(interval_s=step, scrape_s=scrape, range_s=span)
    out = {}
    for panel in board.panels:
        for i, expr in enumerate(panel.exprs):
            out[f"panel:{panel.title}#{i}"] = substitute(expr, board.variables, times)
    return out


def capture(
    prometheus_url: str,
    run_dir: Path,
    window: tuple[float, float] | None = None,
    dashboard: Path | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """Copy the report's series for the run's load window (padded by PAD_S) into run_dir/snapshot.

    Returns the manifest. Never raises for what Prometheus answers: each query's failure is
    recorded in the manifest (`status`), and an unreachable Prometheus gives a manifest whose
    every query says so. Raises ValueError only when the run directory names no load window.
    """
    from codesync_load.errors import HarnessError
    from verify.assets import scrape_intervals
    from verify.prom import Prom

    run_dir = Path(run_dir)
    window = window or load_window(run_dir)
    if window is None:
        raise ValueError(f"{run_dir} names no load window (no phases in ledger.json or phases.json)")
    now = time.time() if now is None else now
    start, end = window[0] - PAD_S, min(window[1] + PAD_S, now)
    prom = Prom(prometheus_url)
    try:
        config = prom.running_config() or {}
        intervals = scrape_intervals(config)
    except (HarnessError, ValueError):
        intervals = {}
    scrape = max(intervals.get("codesync-backend", 0.0), intervals.get("codesync-yjs", 0.0)) or 15.0
    span = max(end - start, 1.0)
    step = _step(span, scrape)
    start = grid_start(start, end, step)
    span = end - start
    rate = f"{max(1, math.ceil(4 * scrape))}s"
    queries = {name: expr.replace("{rate}", rate) for name, expr in QUERIES.items()}
    if dashboard is None:
        from verify.context import VerifyOptions

        dashboard = VerifyOptions(run_dir=run_dir).dashboard
    try:
        queries.update(_panel_queries(Path(dashboard), rate, step, span, scrape))
        dashboard_note = str(dashboard)
    except HarnessError as err:
        dashboard_note = f"unreadable: {err}"
    frames = []
    entries = []
    gone = ""  # set once Prometheus stops accepting connections: the rest is not asked (no retry storm)
    for name, expr in queries.items():
        entry: dict[str, Any] = {"name": name, "expr": expr}
        if gone:
            entry["status"] = gone
            entries.append(entry)
            continue
        try:
            series = prom.range(expr, start, end, step)
        except HarnessError as err:
            entry["status"] = f"error: {err}"
            entries.append(entry)
            if not _answers(prometheus_url):
                gone = f"error: not asked, Prometheus at {prometheus_url} accepts no connection"
            continue
        rows = [(name, _labels(s.labels), t, v) for s in series for t, v in s.points]
        entry["status"] = "ok" if rows else "empty"
        entry["series"] = len(series)
        entries.append(entry)
        if rows:
            frames.append(pd.DataFrame(rows, columns=["query", "series", "t", "value"]))
    out = snapshot_dir(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["query", "series", "t", "value"])
    table.to_csv(out / SERIES_FILE, index=False, compression={"method": "gzip", "mtime": 0})
    manifest = {
        "schema": SCHEMA,
        "prometheus_url": prometheus_url,
        "window": [start, end],
        "load_window": list(window),
        "step_s": step,
        "rate_window": rate,
        "scrape_interval_s": scrape,
        "dashboard": dashboard_note,
        "taken_at": now,
        "queries": entries,
    }
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1))
    return manifest


def _answers(url: str) -> bool:
    """Whether anything accepts a TCP connection at the URL's host and port."""
    from codesync_load.stack.ports import accepts_connections
    from codesync_load.urls import port_of

    parts = urlsplit(url)
    return accepts_connections(port_of(parts), parts.hostname or "127.0.0.1")


def capture_quietly(prometheus_url: str | None, run_dir: Path, **options: Any) -> str:
    """`capture` for the end of a command: one line saying what was kept, never an exception.

    The commands call this last, while their Prometheus is still up; a failure here must not
    turn a finished run into a failed one, so it becomes a line (and the report says the
    snapshot is missing).
    """
    if not prometheus_url:
        return "metrics snapshot: not taken (no Prometheus known for this run)"
    try:
        manifest = capture(prometheus_url, run_dir, **options)
    except Exception as err:  # the report names what is missing; the run's own verdict stands
        return f"metrics snapshot: not taken ({type(err).__name__}: {err})"
    bad = [q["name"] for q in manifest["queries"] if q["status"] not in ("ok", "empty")]
    ok = sum(1 for q in manifest["queries"] if q["status"] == "ok")
    tail = f"; failed: {', '.join(bad[:5])}" if bad else ""
    return f"metrics snapshot: {ok} of {len(manifest['queries'])} queries kept in {snapshot_dir(run_dir)}{tail}"


@dataclass
class Snapshot:
    """A run directory's snapshot as read back; `table` is empty and `manifest` {} when absent."""

    run_dir: Path
    manifest: dict[str, Any] = field(default_factory=dict)
    table: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["query", "series", "t", "value"]))
    problem: str = ""
    _wide: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    _groups: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    @property
    def present(self) -> bool:
        return bool(self.manifest)

    def frame(self, name: str) -> pd.DataFrame:
        """Rows of one query (query, series, t, value), time-sorted; empty when not kept."""
        if self.table.empty:
            return self.table
        if not self._groups:
            self._groups = {key: part for key, part in self.table.groupby("query", sort=False)}
        rows = self._groups.get(name)
        if rows is None:
            return self.table.iloc[0:0]
        return rows.sort_values(["series", "t"], kind="stable")

    def wide(self, name: str) -> pd.DataFrame:
        """One query as a time-indexed frame, one column per series (empty when not kept)."""
        cached = self._wide.get(name)
        if cached is not None:
            return cached
        rows = self.frame(name)
        if rows.empty:
            wide = pd.DataFrame()
        else:
            wide = rows.drop_duplicates(["t", "series"], keep="last").pivot(index="t", columns="series", values="value")
            wide = wide.sort_index()
        self._wide[name] = wide
        return wide

    def status(self, name: str) -> str:
        for entry in self.manifest.get("queries") or []:
            if entry.get("name") == name:
                return str(entry.get("status"))
        return "not in the snapshot" if self.present else "no snapshot"

    def missing(self) -> list[str]:
        """One line per part a report cannot show, naming why (absent snapshot, or a failed query).

        An `empty` query is not missing: Prometheus answered, and no series had a point in the
        window (no rate-limit hit happened, or the target does not export the metric).
        """
        if not self.present:
            return [self.problem or f"no metrics snapshot in {snapshot_dir(self.run_dir)}"]
        return [
            f"{q['name']}: {q['status']}"
            for q in self.manifest.get("queries") or []
            if q.get("status") not in ("ok", "empty")
        ]


def read_snapshot(run_dir: Path) -> Snapshot:
    """The snapshot of `run_dir`; an absent or unreadable one is a Snapshot whose `problem` says so."""
    where = snapshot_dir(run_dir)
    snap = Snapshot(Path(run_dir))
    try:
        snap.manifest = json.loads((where / MANIFEST_FILE).read_text())
    except FileNotFoundError:
        snap.problem = (
            f"no metrics snapshot in {where}: the run was taken without a Prometheus, or before snapshots "
            "existed; target charts are left out"
        )
        return snap
    except ValueError:
        snap.problem = f"{where / MANIFEST_FILE} is not valid JSON; target charts are left out"
        return snap
    try:
        table = pd.read_csv(where / SERIES_FILE, dtype={"query": str, "series": str, "t": float, "value": float})
        table["series"] = table["series"].fillna("")  # a series without labels (a sum) is ""
        snap.table = table
    except (FileNotFoundError, ValueError, OSError, EOFError) as err:
        snap.manifest = {}
        snap.problem = f"{where / SERIES_FILE} is unreadable ({type(err).__name__}); target charts are left out"
    return snap
