"""Report generation is never the slow part: a report from 1,000,000 latency samples and a
1-hour metrics snapshot, timed and measured, as ratios of the targets (<= 15 s, <= 1.5 GB RSS).

    $ .venv/bin/python benchmarks/report_build.py            # ~1 min; prints the figures
    $ .venv/bin/python benchmarks/report_build.py --keep DIR  # keep the synthetic run directory

The run directory is synthetic but has the recorded layout (reports/snapshot.py,
reports/timeseries.py): a ledger with 1,000,000 edit-propagation samples and an hour of
stamped connection events, an hour of Locust history for 10 request types at 1 s, the
generator's CPU at 1 s, and a snapshot of every report query (the contract metrics, process
and node series, the ten dashboard panels, ALERTS) at 1 s over the hour. The report is built
by `codesync-load report` in a child process, whose wall time and peak RSS are the figures.
Its own figures also depend on the machine's other load: the load average is printed with them.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SECONDS_LIMIT = 15.0
RSS_LIMIT_BYTES = 1.5e9
SAMPLES = 1_000_000
HOUR = 3600
T0 = 1_800_000_000.0
NAMES = [("GET", "/health"), ("GET", "/api/sessions"), ("POST", "/api/sessions"), ("GET", "/api/sessions/:id/files"),
         ("PUT", "/api/sessions/:id/files/:path/content"), ("POST", "/api/sessions/:id/search"),
         ("SIO", "chat:message:send"), ("SIO", "connect"), ("YJS", "connect+sync"), ("YJS", "propagation")]  # fmt: skip


def make_run(run: Path) -> None:
    rng = np.random.default_rng(1)
    run.mkdir(parents=True)
    events = []
    for _i in range(2000):
        opened = T0 + rng.uniform(0, HOUR * 0.9)
        events.append([opened, "connection", "yjs", "opened"])
        events.append([opened + rng.uniform(10, 300), "connection", "yjs", "closed"])
    ledger = {
        "schema": "codesync-ledger/1", "complete": True, "written_at": T0 + HOUR + 5,
        "meta": {"profile": "soak", "run_id": "bench"},
        "phases": [{"name": "steady", "start": T0, "end": T0 + HOUR}],
        "counts": {"http": [{"method": "GET", "route": "/api/sessions", "status": 200, "count": 360000}],
                   "connection": [{"channel": "yjs", "event": "opened", "count": 2000},
                                  {"channel": "yjs", "event": "closed", "count": 2000}]},
        "samples": {"yjs_propagation_s": np.round(rng.lognormal(-5.5, 0.6, SAMPLES), 7).tolist()},
        "events": sorted(events), "results": [], "workers": {},
    }  # fmt: skip
    (run / "ledger.json").write_text(json.dumps(ledger))
    header = ["Timestamp", "User Count", "Type", "Name", "Requests/s", "Failures/s", "50%", "66%", "75%", "80%",
              "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%", "Total Request Count", "Total Failure Count",
              "Total Median Response Time", "Total Average Response Time", "Total Min Response Time",
              "Total Max Response Time", "Total Average Content Size"]  # fmt: skip
    with (run / "locust_stats_history.csv").open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(header)
        for s in range(HOUR):
            for kind, name in [*NAMES, ("", "Aggregated")]:
                out.writerow([int(T0) + s, 100, kind, name, 10.0, 0.0, 5, 6, 7, 8, 12, 20, 30, 40, 80, 90, 100,
                              10 * s, 0, 5, 6.0, 1, 100, 120])  # fmt: skip
    with (run / "generator.csv").open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["t", "cpu_percent", "rss_bytes", "processes"])
        for s in range(HOUR):
            out.writerow([f"{T0 + s:.3f}", "35.0", 120_000_000, 1])
    from reports.snapshot import QUERIES

    names = list(QUERIES)
    names += [f"panel:{t}#0" for t in ("Request Rate", "Error Rate", "Response Time (p95)",
              "Active WebSocket Connections", "Active Sessions", "Memory Usage", "CPU Usage", "Database Queries",
              "Redis Operations", "Rate Limit Hits")]  # fmt: skip
    snap = run / "snapshot"
    snap.mkdir()
    entries = []
    ts = np.arange(T0 - 15, T0 + HOUR + 15, 1.0)
    with gzip.open(snap / "series.csv.gz", "wt", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["query", "series", "t", "value"])
        for name in names:
            series = ["job=codesync-backend", "job=codesync-yjs", "job=node-exporter"] if "process" in name else [""]
            if name == "alerts":
                series = ["alertname=HighCPUUsage,alertstate=pending", "alertname=HighCPUUsage,alertstate=firing"]
            for label in series:
                values = np.abs(rng.normal(10, 2, ts.size))
                out.writerows([name, label, f"{t:.3f}", f"{v:.5g}"] for t, v in zip(ts, values, strict=True))
            entries.append({"name": name, "expr": "synthetic", "status": "ok", "series": len(series)})
    manifest = {"schema": "codesync-snapshot/1", "window": [T0 - 15, T0 + HOUR + 15], "load_window": [T0, T0 + HOUR],
                "step_s": 1.0, "queries": entries}  # fmt: skip
    (snap / "manifest.json").write_text(json.dumps(manifest))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, default=None, help="build the run directory here and keep it")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="report-bench-"))
    run = base / "run"
    try:
        if run.exists():
            shutil.rmtree(run)
        started = time.perf_counter()
        make_run(run)
        print(f"synthetic run directory: {run} ({time.perf_counter() - started:.1f} s to write)")
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "codesync_load.cli", "report", str(run)], cwd=REPO,
                              capture_output=True, text=True)  # fmt: skip
        seconds = time.perf_counter() - started
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        rss = usage.ru_maxrss * 1024
        cpu = usage.ru_utime + usage.ru_stime
        if done.returncode != 0:
            print(done.stderr[-2000:])
            return 2
        html = run / "report" / "report.html"
        print(f"report: {html} ({html.stat().st_size / 1e6:.2f} MB)")
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print(f"build time {seconds:.2f} s = {seconds / SECONDS_LIMIT:.2f}x of the {SECONDS_LIMIT:g} s target")
        print(
            f"CPU time {cpu:.2f} s = {cpu / SECONDS_LIMIT:.2f}x of the target (what the build costs without contention)"
        )
        print(f"peak RSS {rss / 1e6:.0f} MB = {rss / RSS_LIMIT_BYTES:.2f}x of the 1.5 GB target")
        met = seconds <= SECONDS_LIMIT and rss <= RSS_LIMIT_BYTES
        print("targets: " + ("met" if met else "NOT met"))
        return 0 if met else 1
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
