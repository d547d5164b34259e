"""The database-outage scenario: stop PostgreSQL mid-run, start it again, and ask each witness
what it noticed and when.

    >>> outage = DbOutage(stop=cluster.stop, start=cluster.start, stop_after=10, start_after=20, what="...")
    >>> outage.start_timer(); ...load...; outage.join()      # stop at +10 s of the load, start at +20 s
    >>> doc = witness_timeline(run_dir, prometheus_url, outage.record(), end=time.time())
    >>> doc["witnesses"][0]                                  # {"witness": "users", "first_notice": ..., ...}

Against the twin the database is a throwaway cluster of the scenario's own
(codesync_load.pgcluster), never the machine's shared PostgreSQL; against an external CodeSync
the operator gives the commands that stop and start its database (`--db-stop-cmd`,
`--db-start-cmd`). The witnesses, each read after the run from where it keeps its record:

- users: the ledger's per-second `served` counts (the first second in which most requests failed);
- metrics: Prometheus, the first scrape after the stop at which the target's 5xx counter had
  risen, or the postgres-exporter's pg_up read 0;
- alerts: Prometheus' ALERTS series, the first alert firing after the stop;
- uptime: the blackbox probe's probe_success with Uptime Kuma's rule (down at the 3rd failed
  try), for /health and for the database port;
- error events: the error tracker, when the stack has one whose events the harness can read.

A witness that never noticed is listed with "never" and the reason it could not (no series,
no alert rule fired), not left out: the point is to show who stayed silent.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codesync_load.ledger import Ledger
from codesync_load.stack.blackbox import DATABASE_JOB, HEALTH_JOB
from codesync_load.uptime import transitions, user_outages, user_seconds
from verify.live.restart import shell_restart
from verify.prom import Prom

WITNESSES_FILE = "witnesses.json"
# The order the report lists witnesses in: the users first (the truth), then the telemetry.
WITNESS_ORDER = ("users", "metrics", "alerts", "uptime /health", "uptime database", "error events")


@dataclass
class DbOutage:
    """Stops the database `stop_after` s into the load and starts it `start_after` s in."""

    stop: Callable[[], None]
    start: Callable[[], None]
    stop_after: float
    start_after: float
    what: str
    stopped_at: float | None = None
    started_at: float | None = None
    error: str | None = None
    _thread: threading.Thread | None = field(default=None, repr=False)
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    def start_timer(self) -> None:
        self._thread = threading.Thread(target=self._run, name="db-outage", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        began = time.monotonic()
        try:
            if self._cancel.wait(self.stop_after):
                return
            self.stopped_at = time.time()  # the outage begins when the stop is issued
            self.stop()
            self._cancel.wait(max(0.0, self.start_after - (time.monotonic() - began)))
        except Exception as err:  # reported in the record and by the command, never lost
            self.error = f"stopping the database: {err}"
        finally:
            if self.stopped_at is not None:
                try:
                    self.start()
                    self.started_at = time.time()
                except Exception as err:
                    self.error = f"starting the database again: {err}"

    def join(self, timeout: float | None = None) -> None:
        """Wait for the timer; a cancelled or finished load still gets its database back."""
        if self._thread is not None:
            self._thread.join(timeout)

    def cancel(self) -> None:
        self._cancel.set()
        self.join(60.0)

    def record(self) -> dict[str, Any]:
        return {
            "scenario": "db-outage",
            "database": self.what,
            "stopped_at": self.stopped_at,
            "started_at": self.started_at,
            "error": self.error,
        }


def shell_db_outage(stop_cmd: str, start_cmd: str, stop_after: float, start_after: float) -> DbOutage:
    """The outage of an external CodeSync's database, by the operator's own commands."""
    stop = shell_restart(stop_cmd)
    start = shell_restart(start_cmd)
    return DbOutage(stop, start, stop_after, start_after, f"stopped by `{stop_cmd}`, started by `{start_cmd}`")


def outage_times(duration: float) -> tuple[float, float]:
    """When to stop and start the database in a load of `duration` s: a quarter in, three quarters in."""
    return round(duration * 0.25, 1), round(duration * 0.75, 1)


# ----- the witnesses ----------------------------------------------------------------------------


def _first_rise(prom: Prom, expr: str, since: float, until: float) -> float | None:
    """The first moment after `since` (0.5 s steps) at which `expr` is above its last value before it."""
    series = prom.range(expr, since - 30.0, until, step=0.5)
    first = None
    for item in series:
        before = [v for t, v in item.points if t <= since]
        base = before[-1] if before else 0.0
        rose = next((t for t, v in item.points if t > since and v > base), None)
        if rose is not None and (first is None or rose < first):
            first = rose
    return first


def _first_value(prom: Prom, selector: str, since: float, until: float, value: float) -> float | None:
    times = [t for s in prom.scrapes(selector, since, until) for t, v in s.points if t > since and v == value]
    return min(times) if times else None


def _probe_down(prom: Prom, job: str, since: float, until: float) -> tuple[float | None, str]:
    series = prom.scrapes(f'probe_success{{job="{job}"}}', since - 60.0, until)
    if not series:
        return None, f"no {job} series (no uptime probe of it in this stack)"
    downs = [c.at for c in transitions(series[0].points) if c.state == "down" and c.at >= since]
    tries = sum(1 for t, _ in series[0].points if t >= since)
    if downs:
        return downs[0], f"down at the 3rd failed try ({series[0].labels.get('instance', job)})"
    return None, f"stayed up through {tries} tries of {series[0].labels.get('instance', job)}"


def tracker_witness(record: dict[str, Any] | None) -> Callable[[float, float], tuple[float | None, str]] | None:
    """The error-events witness of a stack's tracker record (Bugsink), None when there is none."""
    from verify.tracker import TrackerAccess, TrackerError, settled_events

    access = TrackerAccess.from_record(record)
    if access is None:
        return None

    def first_event(since: float, until: float) -> tuple[float | None, str]:
        try:
            events = settled_events(access, since=since, until=until, expected=1, timeout=5.0)
        except TrackerError as err:  # the other witnesses' rows still stand
            return None, f"not read: {err}"
        if not events:
            return None, f"no error event in {access.label}"
        first = min(events, key=lambda e: e.timestamp)
        return first.timestamp, f"{len(events)} events in {access.label}; the first: {first.title or first.id}"

    return first_event


def judge_uptime(run_dir: Path, prometheus_url: str | None) -> dict[str, Any]:
    """uptime-agrees-with-users on this run while its Prometheus is still up (the scenario's own
    stack stops with the run): the verdict and its one line, kept with the timeline."""
    from verify.checks import REGISTRY
    from verify.context import VerifyContext, VerifyOptions

    ctx = VerifyContext(VerifyOptions(run_dir=Path(run_dir), prometheus_url=prometheus_url, live_facts=True))
    result = REGISTRY["uptime-agrees-with-users"].run(ctx)
    return {"check": result.name, "verdict": result.shown_verdict, "summary": result.summary}


def witness_timeline(
    run_dir: Path,
    prometheus_url: str | None,
    outage: dict[str, Any],
    end: float,
    error_events: Callable[[float, float], tuple[float | None, str]] | None = None,
) -> dict[str, Any]:
    """Each witness's first notice of the outage (epoch seconds, None = never) with how it was
    read; written to run_dir/witnesses.json for the report."""
    stopped, started = outage.get("stopped_at"), outage.get("started_at")
    rows: list[dict[str, Any]] = []

    def add(witness: str, at: float | None, how: str) -> None:
        rows.append({"witness": witness, "first_notice": at, "how": how})

    seconds = user_seconds(Ledger.read(run_dir / "ledger.json").entries("served"))
    if stopped is None:
        doc = {"incidents": [], "note": outage.get("error") or "the database was never stopped"}
    else:
        felt = [span for span in user_outages(seconds) if span[1] >= stopped - 1]
        if felt:
            failed = sum(bad for s, (_, bad) in seconds.items() if felt[0][0] <= s < felt[0][1])
            add("users", felt[0][0], f"{failed} requests failed from {felt[0][0]:.0f} to {felt[0][1]:.0f}")
        else:
            add("users", None, "no second in which most requests failed")
        if prometheus_url:
            prom = Prom(prometheus_url)
            five = _first_rise(
                prom, 'sum(codesync_http_requests_total{job="codesync-backend",status_code=~"5.."})', stopped, end
            )
            pg_down = _first_value(prom, "pg_up", stopped, end, 0.0)
            picks = [(t, w) for t, w in ((five, "5xx counter rose"), (pg_down, "pg_up read 0")) if t is not None]
            if picks:
                at, how = min(picks)
                add("metrics", at, how + ("; " + " and ".join(w for _, w in picks[1:]) + " later" if picks[1:] else ""))
            else:
                add("metrics", None, "neither the 5xx counter nor pg_up moved")
            # alerts that began firing after the stop (one already firing before it noticed something else)
            firing = prom.scrapes('ALERTS{alertstate="firing"}', stopped - 30.0, end)
            first = sorted(
                (min(t for t, _ in s.points), s.labels.get("alertname", "?"))
                for s in firing
                if s.points and min(t for t, _ in s.points) > stopped
            )
            if first:
                names = ", ".join(dict.fromkeys(name for _, name in first))
                add("alerts", first[0][0], f"{first[0][1]} firing first (all: {names})")
            else:
                add("alerts", None, "no alert fired")
            for label, job in (("uptime /health", HEALTH_JOB), ("uptime database", DATABASE_JOB)):
                at, how = _probe_down(prom, job, stopped, end)
                add(label, at, how)
        else:
            for label in WITNESS_ORDER[1:5]:
                add(label, None, "no Prometheus known for this run")
        if error_events is None:
            add("error events", None, "no error tracker known for this target (a `stack up` records its Bugsink)")
        else:
            at, how = error_events(stopped, end)
            add("error events", at, how)
        doc = {
            "incidents": [
                {
                    "what": "database outage",
                    "database": outage.get("database"),
                    "stopped_at": stopped,
                    "started_at": started,
                    "witnesses": rows,
                }
            ]
        }
        if outage.get("error"):
            doc["note"] = outage["error"]
    doc["scenario"] = "db-outage"
    if stopped is not None:
        doc["uptime_check"] = judge_uptime(run_dir, prometheus_url)
    (Path(run_dir) / WITNESSES_FILE).write_text(json.dumps(doc, indent=1, sort_keys=True))
    return doc
