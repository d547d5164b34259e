"""The ground-truth ledger: exact counts of what a load run sent and saw, kept as it goes.

    >>> ledger = Ledger(meta={"profile": "smoke"})
    >>> ledger.count("http", "GET", "/api/sessions", 200)
    >>> ledger.sample("yjs_propagation_s", 0.0021)
    >>> ledger.phase_start("steady", at=1700000000.0)
    >>> ledger.write(run_dir / "ledger.json")          # atomic; "complete": false
    >>> ledger.write(run_dir / "ledger.json", complete=True)
    >>> Ledger.read(run_dir / "ledger.json").get("http", "GET", "/api/sessions", 200)
    1

Why one type: reconciliation, gates and reports read this record and nothing re-counts from
Locust's CSV. Locust's own statistics are per request name and whole milliseconds; the
ledger keeps exact counters keyed by label tuples and raw float seconds for latencies, and
merges exactly (counts add, samples concatenate), which is what lets a master sum its
workers' ledgers (`drain()` on a worker, `merge()` on the master) without losing a count.

Pure Python on purpose: no Locust import, so the verifier, the reports and pytest read it.
Thread-safe (one lock) because clients record from reader threads/greenlets. The lock is
`codesync_load.locks.short_lock()`, the interpreter's own even under gevent's patching: a load
process counts every frame and sample here, and no section under it ever yields. The hot path
checks a counter's labels once: `tally(("yjs_update", "sent"), ...)` returns an incrementer.

JSON schema of ledger.json (schema "codesync-ledger/1"):

    {
      "schema": "codesync-ledger/1",
      "complete": false,               # true only once the run finalised it
      "incomplete_reason": "...",      # why not complete (absent when complete)
      "written_at": 1700000000.12,     # epoch seconds of this flush
      "meta": {...},                   # run id, profile, target URLs, started_at, ...
      "phases": [{"name": "ramp", "start": 1700000000.0, "end": 1700000010.0}],
                                       # load phases in order; "end" null while running
      "counts": {                      # one list per kind; every entry names its labels
        "http":        [{"method": "GET", "route": "/api/sessions", "status": 200, "count": 12}],
        "error":       [{"channel": "http", "code": "RATE_LIMIT", "count": 3}],
        "rate_limited":[{"limiter": "files", "count": 3}],
        "connection":  [{"channel": "yjs", "event": "opened", "count": 4}],
        "message":     [{"channel": "socketio", "type": "chat:message:send", "direction": "sent", "count": 9}],
        "session":     [{"event": "created", "count": 2}],
        "participant": [{"session_id": "c...", "event": "joined", "count": 3}],
        "yjs_update":  [{"event": "sent", "count": 40}],
        "failure":     [{"channel": "yjs", "operation": "connect", "error": "YjsSyncTimeout", "count": 1}],
        "unexpected":  [{"method": "PUT", "route": "/api/.../content", "status": 403, "code": "FORBIDDEN", "count": 2}],
        "served":      [{"second": 1700000001, "outcome": "ok", "count": 40}]
      },
      "samples": {"yjs_propagation_s": [0.0012, ...], "chat_rtt_s": [...]},   # raw seconds
      "events": [[1700000001.234, "connection", "yjs", "opened"], ...],
                                       # when each gauge-moving count happened (kind, labels)
      "results": [{"check": "convergence", "ok": true, "subject": "<doc>", "detail": "...", "at": 1700000000.0}],
      "workers": {"<worker id>": {"reports": 7, "final": true}}   # master only: merged reports
    }

Label meanings: `connection.event` is opened | refused | closed; `message.direction` is
sent | received from the load generator's point of view (the server's inbound is our sent);
`yjs_update.event` is sent | received (others' updates) | echo (our own, rebroadcast) |
applied; `served` counts HTTP requests per epoch second by outcome, ok | failed (5xx or
no answer), so the uptime probe can be held against when users could use the service;
`unexpected` holds the HTTP answers the load model did not intend (its users'
`expected_result` said no: the run's failures by route and status, also in `http`);
`rate_limited.limiter` is files | search | socketio | yjs; `error.code` is the
envelope's code (or the WebSocket close reason) of a refused call; `yjs_document.event` is
opened | closed, one per Yjs connection to that document.

Why "events": a gauge's level at any moment is what was opened minus what was closed up to
then, so the verifier can hold every scrape of a gauge during the load against the level
the ledger had at that moment (not just its peak). Only the kinds that move gauges are
stamped (`event()`), a few per user, never the per-frame hot path.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codesync_load.errors import is_server_error
from codesync_load.locks import short_lock

SCHEMA = "codesync-ledger/1"

# Share of a load process's time periodic flushes may take (see flush_pause).
FLUSH_SHARE = 0.05

# Every kind of counter and the names of its labels, in key order.
KINDS: dict[str, tuple[str, ...]] = {
    "http": ("method", "route", "status"),
    "error": ("channel", "code"),
    "rate_limited": ("limiter",),
    "connection": ("channel", "event"),
    "message": ("channel", "type", "direction"),
    "session": ("event",),
    "participant": ("session_id", "event"),
    "yjs_update": ("event",),
    "yjs_document": ("document", "event"),
    "failure": ("channel", "operation", "error"),
    "unexpected": ("method", "route", "status", "code"),
    "served": ("second", "outcome"),
}

Key = tuple[Any, ...]


class LedgerError(ValueError):
    """A ledger file or entry that cannot be used; the message names it and the fix."""


@dataclass
class Phase:
    """One load phase's window in epoch seconds; `end` is None while it runs."""

    name: str
    start: float
    end: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "start": self.start, "end": self.end}


class Ledger:
    """Exact counters, raw samples, phase windows and check results of one run (or part)."""

    def __init__(self, meta: Mapping[str, Any] | None = None) -> None:
        self._lock = short_lock()  # not reentrant: no method calls another under it
        self.meta: dict[str, Any] = dict(meta or {})
        self._counts: Counter[Key] = Counter()
        self._samples: dict[str, list[float]] = {}
        self.phases: list[Phase] = []
        self.results: list[dict[str, Any]] = []
        self.workers: dict[str, dict[str, Any]] = {}
        self._events: list[list[Any]] = []

    # -- recording ---------------------------------------------------------------------
    def count(self, kind: str, *labels: Any, n: int = 1) -> None:
        """Add `n` to the counter `kind` with `labels` (as many as KINDS[kind] names)."""
        key = _checked_key(kind, labels)
        with self._lock:
            self._counts[key] += n

    def event(self, kind: str, *labels: Any, at: float | None = None) -> None:
        """Count one event like `count` and keep when it happened (epoch seconds)."""
        key = _checked_key(kind, labels)
        stamp = time.time() if at is None else at
        with self._lock:
            self._counts[key] += 1
            self._events.append([stamp, *key])

    def events(self, kind: str) -> list[tuple[float, tuple[Any, ...]]]:
        """(time, labels) of every stamped event of `kind`, in time order."""
        with self._lock:
            rows = [(row[0], tuple(row[2:])) for row in self._events if row[1] == kind]
        return sorted(rows, key=lambda row: row[0])

    def tally(self, *keys: tuple[Any, ...]) -> Callable[[], None]:
        """An incrementer for hot paths: each call adds 1 to every key `(kind, *labels)`.

        The keys are checked once, here (LedgerError as `count` raises it), and one call takes
        the lock once for all of them: a received Yjs update is three counters. Counts land in
        the ledger at once, so a flush, drain or kill sees every call made before it.
        """
        checked = tuple(_checked_key(key[0], tuple(key[1:])) for key in keys)
        lock = self._lock

        def add() -> None:
            with lock:
                counts = self._counts
                for key in checked:
                    counts[key] += 1

        return add

    def sample(self, name: str, seconds: float) -> None:
        """Keep one raw latency sample (float seconds, sub-millisecond precision kept)."""
        value = seconds if type(seconds) is float else float(seconds)
        with self._lock:
            values = self._samples.get(name)
            if values is None:
                self._samples[name] = [value]
            else:
                values.append(value)

    def sample_many(self, name: str, seconds: list[float]) -> None:
        """Keep several raw samples at once (one lock): a socket read's propagation latencies.

        The values must be floats already (the clients' perf_counter differences are).
        """
        with self._lock:
            values = self._samples.get(name)
            if values is None:
                self._samples[name] = list(seconds)
            else:
                values.extend(seconds)

    def phase_start(self, name: str, at: float | None = None) -> None:
        """Open phase `name`, closing the one still open (phases follow each other)."""
        at = time.time() if at is None else at
        with self._lock:
            self._close_open_phase(at)
            self.phases.append(Phase(name, at))

    def phase_end(self, at: float | None = None) -> None:
        """Close the phase that is open, if any."""
        with self._lock:
            self._close_open_phase(time.time() if at is None else at)

    def _close_open_phase(self, at: float) -> None:
        if self.phases and self.phases[-1].end is None:
            self.phases[-1].end = at

    def result(self, check: str, ok: bool, subject: str = "", detail: str = "", at: float | None = None) -> None:
        """Record a convergence or durability outcome (one entry per document checked)."""
        entry = {"check": check, "ok": bool(ok), "subject": subject, "detail": detail}
        entry["at"] = time.time() if at is None else at
        with self._lock:
            self.results.append(entry)

    # -- reading -----------------------------------------------------------------------
    def get(self, kind: str, *labels: Any) -> int:
        """The exact count for one full key (0 when never counted)."""
        with self._lock:
            return self._counts.get((kind, *labels), 0)

    def total(self, kind: str, **where: Any) -> int:
        """Sum of a kind's counters whose labels match every `where` item."""
        names = KINDS[kind]
        unknown = set(where) - set(names)
        if unknown:
            raise LedgerError(f"ledger kind {kind!r} has no label {sorted(unknown)}; it has {names}")
        with self._lock:
            items = list(self._counts.items())
        total = 0
        for key, value in items:
            if key[0] != kind:
                continue
            labels = dict(zip(names, key[1:], strict=True))
            if all(labels[k] == v for k, v in where.items()):
                total += value
        return total

    def entries(self, kind: str) -> list[tuple[tuple[Any, ...], int]]:
        """(labels, count) pairs of one kind, sorted for stable output."""
        with self._lock:
            items = [(key[1:], value) for key, value in self._counts.items() if key[0] == kind]
        return _sorted_entries(items)

    def samples(self, name: str) -> list[float]:
        with self._lock:
            return list(self._samples.get(name, ()))

    def sample_names(self) -> list[str]:
        with self._lock:
            return sorted(self._samples)

    def is_empty(self) -> bool:
        with self._lock:
            return not (self._counts or self._samples or self.results or self.phases or self._events)

    # -- combining ---------------------------------------------------------------------
    def merge(self, other: Ledger) -> None:
        """Add another ledger into this one: counts add, samples and results concatenate.

        Phases are appended too (a worker has none; two masters' phases would both stay).
        """
        if other is self:
            raise LedgerError("cannot merge a ledger into itself")
        with other._lock:
            counts = Counter(other._counts)
            samples = {name: list(values) for name, values in other._samples.items()}
            phases = [Phase(p.name, p.start, p.end) for p in other.phases]
            results = [dict(r) for r in other.results]
            events = [list(e) for e in other._events]
        with self._lock:
            self._counts.update(counts)
            self._events.extend(events)
            for name, values in samples.items():
                self._samples.setdefault(name, []).extend(values)
            self.phases.extend(phases)
            self.results.extend(results)

    def drain(self) -> Ledger:
        """Move everything recorded since the last drain into a new ledger and return it.

        A worker sends each drained delta to the master, so every event is sent exactly once.
        """
        delta = Ledger()
        with self._lock:
            delta._counts, self._counts = self._counts, Counter()
            delta._samples, self._samples = self._samples, {}
            delta.results, self.results = self.results, []
            delta.phases, self.phases = self.phases, []
            delta._events, self._events = self._events, []
        return delta

    def note_worker_report(self, worker_id: str, final: bool) -> None:
        """Master side: remember that a worker's delta was merged (and whether it was its last)."""
        with self._lock:
            record = self.workers.setdefault(worker_id, {"reports": 0, "final": False})
            record["reports"] += 1
            record["final"] = record["final"] or final

    # -- serialising -------------------------------------------------------------------
    def to_dict(self, complete: bool = False, incomplete_reason: str = "") -> dict[str, Any]:
        """The JSON document described in the module docstring."""
        with self._lock:
            by_kind: dict[str, list[tuple[tuple[Any, ...], int]]] = {}
            for key, value in self._counts.items():
                by_kind.setdefault(key[0], []).append((key[1:], value))
            counts: dict[str, list[dict[str, Any]]] = {}
            for kind, names in KINDS.items():
                rows = []
                for labels, value in _sorted_entries(by_kind.get(kind, [])):
                    row = dict(zip(names, labels, strict=True))
                    row["count"] = value
                    rows.append(row)
                if rows:
                    counts[kind] = rows
            doc: dict[str, Any] = {
                "schema": SCHEMA,
                "complete": bool(complete),
                "written_at": time.time(),
                "meta": dict(self.meta),
                "phases": [p.to_dict() for p in self.phases],
                "counts": counts,
                "samples": {name: list(values) for name, values in sorted(self._samples.items())},
                "events": sorted((list(e) for e in self._events), key=lambda e: e[0]),
                "results": [dict(r) for r in self.results],
                "workers": {k: dict(v) for k, v in sorted(self.workers.items())},
            }
        if not complete:
            doc["incomplete_reason"] = incomplete_reason or "the run has not finished (or was killed)"
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], source: str = "ledger") -> Ledger:
        """Rebuild a ledger from `to_dict()` output; LedgerError names what is wrong."""
        if not isinstance(doc, Mapping) or doc.get("schema") != SCHEMA:
            raise LedgerError(f"{source}: not a {SCHEMA} document; write it with Ledger.write()")
        ledger = cls(meta=doc.get("meta") or {})
        try:
            for kind, rows in (doc.get("counts") or {}).items():
                names = KINDS.get(kind)
                if names is None:
                    raise LedgerError(f"{source}: unknown counter kind {kind!r}; known: {sorted(KINDS)}")
                for row in rows:
                    ledger._counts[(kind, *(row[name] for name in names))] += int(row["count"])
            for name, values in (doc.get("samples") or {}).items():
                ledger._samples[name] = [float(v) for v in values]
            ledger.phases = [Phase(p["name"], float(p["start"]), p.get("end")) for p in doc.get("phases") or []]
            for row in doc.get("events") or []:
                try:
                    _checked_key(row[1], tuple(row[2:]))
                except LedgerError as err:
                    raise LedgerError(f"{source}: {err}") from None
                ledger._events.append([float(row[0]), *row[1:]])
            ledger.results = [dict(r) for r in doc.get("results") or []]
            ledger.workers = {k: dict(v) for k, v in (doc.get("workers") or {}).items()}
        except (KeyError, IndexError, TypeError, ValueError) as err:
            if isinstance(err, LedgerError):
                raise
            raise LedgerError(f"{source}: malformed entry ({err!r}); regenerate the ledger") from None
        return ledger

    def write(self, path: Path, complete: bool = False, incomplete_reason: str = "") -> None:
        """Write atomically (temporary file + rename), so a reader never sees half a file."""
        doc = self.to_dict(complete=complete, incomplete_reason=incomplete_reason)
        write_json_atomic(path, doc)

    @classmethod
    def read(cls, path: Path) -> Ledger:
        """Load a ledger.json; `read_status` tells whether it was complete."""
        return cls.from_dict(read_json(path), source=str(path))


def _checked_key(kind: str, labels: tuple[Any, ...]) -> Key:
    """The counter key `(kind, *labels)`, or LedgerError naming the kind's labels."""
    names = KINDS.get(kind)
    if names is None:
        raise LedgerError(f"unknown ledger kind {kind!r}; use one of {sorted(KINDS)}")
    if len(labels) != len(names):
        raise LedgerError(f"ledger kind {kind!r} takes labels {names}, got {labels!r}")
    return (kind, *labels)


def _sorted_entries(items: list[tuple[tuple[Any, ...], int]]) -> list[tuple[tuple[Any, ...], int]]:
    return sorted(items, key=lambda item: tuple(str(x) for x in item[0]))


def flush_pause(interval: float, last_write_s: float) -> float:
    """Seconds to wait before the next periodic flush: `interval`, or longer when writing is slow.

    Every flush serialises all samples so far, so its cost grows with the run: a soak that
    keeps millions of propagation samples would otherwise spend ever more of its one core
    writing JSON instead of generating load. Waiting last_write_s / FLUSH_SHARE keeps
    flushing under 5 % of the process's time; what a killed run loses is bounded by that wait.
    """
    return max(interval, last_write_s / FLUSH_SHARE)


def ledger_summary(doc: dict[str, Any]) -> dict[str, Any]:
    """The ledger's totals a reader wants first, plus the HTTP table by route and status."""
    counts = doc.get("counts") or {}

    def total(kind: str, **where: Any) -> int:
        return sum(int(r["count"]) for r in counts.get(kind, []) if all(r.get(k) == v for k, v in where.items()))

    results = doc.get("results") or []
    return {
        "complete": bool(doc.get("complete")),
        "incomplete_reason": doc.get("incomplete_reason", ""),
        "http_requests": total("http"),
        "http_5xx": sum(int(r["count"]) for r in counts.get("http", []) if is_server_error(r["status"])),
        "rate_limited": total("rate_limited"),
        "errors": total("error"),
        "failures": total("failure"),
        "connections_opened": total("connection", event="opened"),
        "connections_refused": total("connection", event="refused"),
        "connections_closed": total("connection", event="closed"),
        "yjs_updates_sent": total("yjs_update", event="sent"),
        "yjs_updates_applied": total("yjs_update", event="applied"),
        "sessions_created": total("session", event="created"),
        "results": len(results),
        "results_failed": sum(1 for r in results if not r.get("ok")),
        "http": sorted(
            (
                {"method": r["method"], "route": r["route"], "status": r["status"], "count": r["count"]}
                for r in counts.get("http", [])
            ),
            key=lambda r: (str(r["route"]), str(r["method"]), str(r["status"])),
        ),
    }


def read_summary(path: Path) -> dict[str, Any]:
    """ledger_summary of a ledger file, checked as Ledger.read checks it (LedgerError names what is wrong)."""
    doc = read_json(path)
    Ledger.from_dict(doc, source=str(path))
    return ledger_summary(doc)


def read_status(path: Path) -> tuple[bool, str]:
    """(complete, incomplete_reason) of a ledger file, for readers that only need the flag."""
    doc = read_json(path)
    return bool(doc.get("complete")), str(doc.get("incomplete_reason", ""))


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise LedgerError(f"{path}: no ledger there; run `codesync-load run` to make one") from None
    except json.JSONDecodeError as err:
        raise LedgerError(f"{path}: not valid JSON ({err.msg} at line {err.lineno}); regenerate it") from None


def write_json_atomic(path: Path, doc: Any) -> None:
    """Write JSON to a sibling temporary file, flush it to disk, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "w") as handle:
        json.dump(doc, handle, indent=1, sort_keys=False)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def merged(ledgers: Iterable[Ledger]) -> Ledger:
    """A new ledger holding the sum of `ledgers` (the first one's meta is kept)."""
    total = Ledger()
    for i, ledger in enumerate(ledgers):
        if i == 0:
            total.meta = dict(ledger.meta)
        total.merge(ledger)
    return total
