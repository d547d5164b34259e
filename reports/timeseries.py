"""A run directory's records as pandas time series: what the charts and the capacity analysis read.

    >>> ts = RunSeries.load(run_dir)
    >>> ts.users()                 # t, users (Locust's own count, every second or so)
    >>> ts.client_latency()        # t, type, name, p50, p95, p99, rps (seconds; per request type)
    >>> ts.connections()           # t, channel, open (the ledger's stamped opens and closes)
    >>> ts.generator()             # t, cpu_percent, rss_bytes (the Locust process tree)
    >>> ts.snapshot.wide("process_cpu")

Times are epoch seconds everywhere; `t0` (the first phase's start) is what the charts count
from. Sources, and why each: the ledger holds exact counts but stamps only the events that
move gauges (connections, sessions), so levels over time come from it; per-request latencies
over time come from Locust's stats history (`--csv-full-history`: per request name, a sliding
window of recent responses, whole milliseconds), since the ledger keeps raw samples without
times; the target's side comes from the metrics snapshot. Each reader returns an empty frame
when its file is absent, and `missing()` says which.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from codesync_load.generator_cpu import GENERATOR_FILE
from reports.snapshot import Snapshot, read_snapshot

HISTORY_FILE = "locust_stats_history.csv"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def _ms_column(values: pd.Series) -> pd.Series:
    """Locust's whole-millisecond percentile column ("N/A" before any response) in seconds."""
    return pd.to_numeric(values, errors="coerce") / 1000.0


@dataclass
class RunSeries:
    """One run directory's records, read once."""

    run_dir: Path
    ledger: dict[str, Any] = field(default_factory=dict)
    history: pd.DataFrame = field(default_factory=pd.DataFrame)
    generator_cpu: pd.DataFrame = field(default_factory=pd.DataFrame)
    snapshot: Snapshot | None = None
    notes: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, run_dir: Path) -> RunSeries:
        run_dir = Path(run_dir)
        out = cls(run_dir, ledger=_read_json(run_dir / "ledger.json") or {})
        if not out.ledger:
            out.notes.append(f"no readable ledger.json in {run_dir}: load levels and latencies are left out")
        try:
            out.history = pd.read_csv(run_dir / HISTORY_FILE)
        except (FileNotFoundError, pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError):
            out.notes.append(f"no readable {HISTORY_FILE}: users and client latency over time are left out")
        try:
            out.generator_cpu = pd.read_csv(run_dir / GENERATOR_FILE)
        except (FileNotFoundError, pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError):
            out.notes.append(f"no {GENERATOR_FILE}: the load generator's CPU is left out (run predates it)")
        out.snapshot = read_snapshot(run_dir)
        return out

    # -- time ------------------------------------------------------------------------------
    @property
    def phases(self) -> list[dict[str, Any]]:
        return [p for p in self.ledger.get("phases") or [] if p.get("start") is not None]

    @property
    def t0(self) -> float:
        """The first phase's start (epoch s); else the snapshot's window start; else 0."""
        if self.phases:
            return float(min(p["start"] for p in self.phases))
        if self.snapshot is not None and self.snapshot.manifest.get("load_window"):
            return float(self.snapshot.manifest["load_window"][0])
        return 0.0

    # -- the load generator's side -----------------------------------------------------------
    def users(self) -> pd.DataFrame:
        """t, users: Locust's running user count (Aggregated rows of the stats history)."""
        if self.history.empty or "Name" not in self.history:
            return pd.DataFrame(columns=["t", "users"])
        rows = self.history[self.history["Name"] == "Aggregated"]
        return pd.DataFrame({"t": rows["Timestamp"].astype(float), "users": rows["User Count"].astype(float)})

    def client_latency(self) -> pd.DataFrame:
        """t, type, name, p50, p95, p99 (s), rps, fps per request type over time (not Aggregated)."""
        cols = ["t", "type", "name", "p50", "p95", "p99", "rps", "fps"]
        if self.history.empty or "Name" not in self.history:
            return pd.DataFrame(columns=cols)
        rows = self.history[self.history["Name"] != "Aggregated"]
        out = pd.DataFrame(
            {
                "t": rows["Timestamp"].astype(float),
                "type": rows["Type"].fillna("").astype(str),
                "name": rows["Name"].astype(str),
                "p50": _ms_column(rows["50%"]),
                "p95": _ms_column(rows["95%"]),
                "p99": _ms_column(rows["99%"]),
                "rps": pd.to_numeric(rows["Requests/s"], errors="coerce"),
                "fps": pd.to_numeric(rows["Failures/s"], errors="coerce"),
            }
        )
        return out.reset_index(drop=True)

    def aggregated(self) -> pd.DataFrame:
        """t, users, rps, fps, p50, p95, p99 of Locust's Aggregated rows (all request types)."""
        if self.history.empty or "Name" not in self.history:
            return pd.DataFrame(columns=["t", "users", "rps", "fps", "p50", "p95", "p99"])
        rows = self.history[self.history["Name"] == "Aggregated"]
        return pd.DataFrame(
            {
                "t": rows["Timestamp"].astype(float),
                "users": rows["User Count"].astype(float),
                "rps": pd.to_numeric(rows["Requests/s"], errors="coerce"),
                "fps": pd.to_numeric(rows["Failures/s"], errors="coerce"),
                "p50": _ms_column(rows["50%"]),
                "p95": _ms_column(rows["95%"]),
                "p99": _ms_column(rows["99%"]),
            }
        ).reset_index(drop=True)

    def connections(self) -> pd.DataFrame:
        """t, channel, open: each channel's open WebSocket connections after every stamped event."""
        events = [e for e in self.ledger.get("events") or [] if len(e) >= 4 and e[1] == "connection"]
        if not events:
            return pd.DataFrame(columns=["t", "channel", "open"])
        frame = pd.DataFrame([(float(e[0]), str(e[2]), str(e[3])) for e in events], columns=["t", "channel", "event"])
        frame["delta"] = frame["event"].map({"opened": 1, "closed": -1}).fillna(0)
        frame = frame.sort_values(["channel", "t"], kind="stable")
        frame["open"] = frame.groupby("channel")["delta"].cumsum()
        return frame[["t", "channel", "open"]].reset_index(drop=True)

    def sessions(self) -> pd.DataFrame:
        """t, open: sessions this run created minus those it deleted, after every stamped event."""
        events = [e for e in self.ledger.get("events") or [] if len(e) >= 3 and e[1] == "session"]
        if not events:
            return pd.DataFrame(columns=["t", "open"])
        frame = pd.DataFrame([(float(e[0]), str(e[2])) for e in events], columns=["t", "event"]).sort_values("t")
        frame["open"] = frame["event"].map({"created": 1, "deleted": -1}).fillna(0).cumsum()
        return frame[["t", "open"]].reset_index(drop=True)

    def generator(self) -> pd.DataFrame:
        """t, cpu_percent (of one core, whole Locust tree), rss_bytes."""
        return self.generator_cpu

    def samples(self, name: str) -> np.ndarray:
        """A raw sample series of the ledger (seconds) as a float array; empty when absent."""
        values = (self.ledger.get("samples") or {}).get(name) or []
        return np.asarray(values, dtype=float)

    def missing(self) -> list[str]:
        """Every part of the run directory a report cannot use, one line each, naming why."""
        return [*self.notes, *(self.snapshot.missing() if self.snapshot is not None else [])]
