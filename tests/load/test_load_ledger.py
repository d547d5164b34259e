"""The ledger: exact counts, exact merges, atomic flushes, readable when incomplete."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from codesync_load.ledger import FLUSH_SHARE, SCHEMA, Ledger, LedgerError, flush_pause, merged, read_status


def _filled(n_http: int, samples: list[float]) -> Ledger:
    ledger = Ledger(meta={"profile": "t"})
    for _ in range(n_http):
        ledger.count("http", "GET", "/api/sessions", 200)
    ledger.count("rate_limited", "files", n=3)
    ledger.count("message", "socketio", "chat:message:send", "sent", n=2)
    for value in samples:
        ledger.sample("yjs_propagation_s", value)
    return ledger


def test_counts_are_exact_and_filterable() -> None:
    ledger = _filled(7, [0.0001, 0.0002])
    ledger.count("http", "PUT", "/api/sessions/:id/files/:path/content", 429, n=2)
    assert ledger.get("http", "GET", "/api/sessions", 200) == 7
    assert ledger.total("http") == 9
    assert ledger.total("http", status=429) == 2
    assert ledger.total("http", method="GET", route="/api/sessions") == 7
    assert ledger.get("http", "GET", "/nothing", 200) == 0
    # sub-millisecond samples survive untouched
    assert ledger.samples("yjs_propagation_s") == [0.0001, 0.0002]


def test_bad_keys_are_refused_with_the_fix() -> None:
    ledger = Ledger()
    with pytest.raises(LedgerError, match="unknown ledger kind 'htp'"):
        ledger.count("htp", "GET", "/", 200)
    with pytest.raises(LedgerError, match="takes labels"):
        ledger.count("http", "GET", 200)
    with pytest.raises(LedgerError, match="has no label"):
        ledger.total("http", path="/x")


def test_round_trip_through_json_keeps_everything(tmp_path: Path) -> None:
    ledger = _filled(4, [0.5, 0.25])
    ledger.phase_start("ramp", at=100.0)
    ledger.phase_start("steady", at=110.0)
    ledger.phase_end(at=130.0)
    ledger.result("convergence", True, subject="doc-1", detail="3 clients, 120 chars", at=131.0)
    path = tmp_path / "ledger.json"
    ledger.write(path)
    doc = json.loads(path.read_text())
    assert doc["schema"] == SCHEMA
    assert doc["complete"] is False and "killed" in doc["incomplete_reason"]
    assert doc["counts"]["http"] == [{"method": "GET", "route": "/api/sessions", "status": 200, "count": 4}]
    assert doc["phases"] == [
        {"name": "ramp", "start": 100.0, "end": 110.0},
        {"name": "steady", "start": 110.0, "end": 130.0},
    ]
    back = Ledger.read(path)
    assert back.to_dict()["counts"] == doc["counts"]
    assert back.samples("yjs_propagation_s") == [0.5, 0.25]
    assert back.results[0]["subject"] == "doc-1"
    ledger.write(path, complete=True)
    assert read_status(path) == (True, "")


def test_merge_of_drained_deltas_equals_the_whole() -> None:
    """A worker drains deltas; the master merges them: totals equal a single ledger's."""
    worker = Ledger()
    master = Ledger()
    reference = Ledger()
    for round_ in range(5):
        for i in range(round_ + 3):
            for target in (worker, reference):
                target.count("http", "POST", "/api/auth/register", 201)
                target.count("yjs_update", "sent", n=i)
                target.sample("chat_rtt_s", round_ + i / 10)
        master.merge(worker.drain())
        master.note_worker_report("w1", final=round_ == 4)
    assert worker.is_empty()
    assert master.to_dict()["counts"] == reference.to_dict()["counts"]
    assert sorted(master.samples("chat_rtt_s")) == sorted(reference.samples("chat_rtt_s"))
    assert master.workers == {"w1": {"reports": 5, "final": True}}
    both = merged([_filled(2, [1.0]), _filled(3, [2.0])])
    assert both.get("http", "GET", "/api/sessions", 200) == 5
    assert both.get("rate_limited", "files") == 6
    with pytest.raises(LedgerError):
        master.merge(master)


def test_unreadable_files_fail_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "ledger.json"
    bad.write_text("{not json")
    with pytest.raises(LedgerError, match="not valid JSON"):
        Ledger.read(bad)
    bad.write_text(json.dumps({"schema": "other"}))
    with pytest.raises(LedgerError, match="not a codesync-ledger/1 document"):
        Ledger.read(bad)
    with pytest.raises(LedgerError, match="no ledger there"):
        Ledger.read(tmp_path / "missing.json")


def _writer(path: str, ready: multiprocessing.Event) -> None:  # type: ignore[type-arg]
    ledger = Ledger()
    i = 0
    while True:
        i += 1
        ledger.count("http", "GET", "/health", 200)
        ledger.sample("s", float(i))
        ledger.write(Path(path))
        ready.set()


def test_a_writer_killed_mid_flush_leaves_a_readable_incomplete_file(tmp_path: Path) -> None:
    """SIGKILL at an arbitrary moment: the file on disk is always a whole, parseable ledger."""
    path = tmp_path / "ledger.json"
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=_writer, args=(str(path), ready))
    proc.start()
    try:
        assert ready.wait(20), "writer never flushed"
        deadline = time.monotonic() + 5
        while Ledger.read(path).get("http", "GET", "/health", 200) < 50 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)
    ledger = Ledger.read(path)
    complete, reason = read_status(path)
    assert not complete and reason
    count = ledger.get("http", "GET", "/health", 200)
    assert count >= 50
    # the count and the samples were written together: one consistent snapshot
    assert ledger.samples("s") == [float(i) for i in range(1, count + 1)]


def test_a_tally_counts_its_keys_exactly_across_drains_and_checks_them_once() -> None:
    """The hot path's incrementer: several counters per call, none lost when a drain cuts in."""
    worker = Ledger()
    master = Ledger()
    received = worker.tally(
        ("message", "yjs", "update", "received"), ("yjs_update", "received"), ("yjs_update", "applied")
    )
    sent = worker.tally(("yjs_update", "sent"))
    for round_ in range(4):
        for _ in range(round_ + 2):
            received()
        sent()
        master.merge(worker.drain())  # the tallies keep counting into the worker's new counters
    received()
    master.merge(worker.drain())
    assert master.get("message", "yjs", "update", "received") == 2 + 3 + 4 + 5 + 1
    assert master.get("yjs_update", "received") == master.get("yjs_update", "applied") == 15
    assert master.get("yjs_update", "sent") == 4
    assert worker.is_empty()
    with pytest.raises(LedgerError, match="unknown ledger kind 'yjs'"):
        worker.tally(("yjs", "sent"))
    with pytest.raises(LedgerError, match="takes labels"):
        worker.tally(("yjs_update", "sent"), ("message", "yjs", "update"))


def test_samples_are_kept_as_floats_whatever_number_type_arrives() -> None:
    ledger = Ledger()
    ledger.sample("chat_rtt_s", 1)
    ledger.sample("chat_rtt_s", 0.25)
    assert ledger.samples("chat_rtt_s") == [1.0, 0.25]
    assert [type(v) for v in ledger.samples("chat_rtt_s")] == [float, float]


def test_periodic_flushes_slow_down_once_a_write_costs_more_than_its_share() -> None:
    assert FLUSH_SHARE == 0.05
    assert flush_pause(1.0, 0.01) == 1.0  # a cheap write keeps the configured interval
    assert flush_pause(1.0, 0.05) == 1.0  # exactly 5 % of the interval: still the interval
    assert flush_pause(1.0, 0.2) == pytest.approx(4.0)  # 0.2 s writes: one every 4 s = 5 %
    assert flush_pause(10.0, 0.2) == 10.0


def test_sample_many_keeps_every_value_in_order_after_single_samples() -> None:
    """The lean connection's path (one call per socket read) keeps what one call each would."""
    one_by_one, batched = Ledger(), Ledger()
    values = [0.001, 0.25, 0.0005, 1.5, 0.003]
    for value in values:
        one_by_one.sample("yjs_propagation_s", value)
    batched.sample_many("yjs_propagation_s", values[:2])
    batched.sample_many("yjs_propagation_s", [])
    batched.sample_many("yjs_propagation_s", values[2:])
    assert batched.samples("yjs_propagation_s") == one_by_one.samples("yjs_propagation_s") == values
    kept = [0.5]
    fresh = Ledger()
    fresh.sample_many("x_s", kept)
    kept.append(9.0)  # the ledger holds its own list, not the caller's
    assert fresh.samples("x_s") == [0.5]


def test_stamped_events_count_travel_from_workers_and_round_trip(tmp_path: Path) -> None:
    """`event()` counts like `count()` and keeps when it happened; drains, merges and the file
    keep every stamp, so the verifier can rebuild a gauge's level at any moment."""
    worker, master = Ledger(), Ledger()
    worker.event("connection", "yjs", "opened", at=10.5)
    worker.event("yjs_document", "s1:main.py", "opened", at=10.5)
    master.merge(worker.drain())
    worker.event("connection", "yjs", "closed", at=12.25)
    master.merge(Ledger.from_dict(worker.drain().to_dict(), source="worker w1"))
    master.event("connection", "yjs", "opened", at=11.0)
    assert worker.is_empty()
    assert master.get("connection", "yjs", "opened") == 2 and master.get("connection", "yjs", "closed") == 1
    expected = [(10.5, ("yjs", "opened")), (11.0, ("yjs", "opened")), (12.25, ("yjs", "closed"))]
    assert master.events("connection") == expected
    assert master.events("yjs_document") == [(10.5, ("s1:main.py", "opened"))]
    master.write(tmp_path / "ledger.json", complete=True)
    assert Ledger.read(tmp_path / "ledger.json").events("connection") == expected
    with pytest.raises(LedgerError, match="takes labels"):
        master.event("connection", "yjs")
    doc = master.to_dict()
    doc["events"].append([13.0, "gauge"])
    with pytest.raises(LedgerError, match=r"^worker w2: unknown ledger kind 'gauge'"):
        Ledger.from_dict(doc, source="worker w2")
