"""The clients inside a gevent-patched Locust process, reporting through `locust_events`.

The probe runs as a subprocess (importing Locust in pytest would patch pytest's process);
it prints every request event a real `locust.env.Environment` received.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_probe


def test_locust_transport_and_events_report_each_call_once_by_template(twin) -> None:
    record = run_probe(Path(__file__).with_name("locust_probe.py"), twin.api_url, twin.yjs_url)
    events = record["events"]
    named = [(e["request_type"], e["name"], e["exception"]) for e in events]
    assert named == [
        ("GET", "/health", None),  # fetched first for the CSRF pair
        ("POST", "/api/auth/register", None),
        ("POST", "/api/sessions", None),
        ("PUT", "/api/sessions/:id/files/:path/content", None),
        ("GET", "/api/sessions/:id", "404 NOT_FOUND"),
        ("SIO", "connect", None),
        ("SIO", "chat round trip", None),
    ]  # propagation samples are no request events: they reach the statistics in batches
    assert all(isinstance(e["response_time"], float) and e["response_time"] > 0 for e in events)
    # sub-millisecond precision survives: not every time is a whole number of milliseconds
    assert any(e["response_time"] != int(e["response_time"]) for e in events)
    assert events[1]["response_length"] > 0
    assert record["text"] == "43210"
    propagation = record["propagation"]
    latencies = propagation["latencies_ms"]
    assert len(latencies) == 5 and propagation["num_requests"] == 5 and propagation["num_failures"] == 0
    assert propagation["total_response_time"] == pytest.approx(sum(latencies), rel=1e-12)
    assert propagation["min_response_time"] == min(latencies)
    assert propagation["max_response_time"] == max(latencies)
    assert propagation["response_times"] == propagation["expected_response_times"]
    assert record["cookies"] == ["csrf-token", "sessionId", "token"]


def test_batched_propagation_statistics_equal_locusts_own_logging_of_every_sample() -> None:
    """Count, sum, min, max, histogram, percentiles and per-second counts: as if logged one by one."""
    record = run_probe(Path(__file__).with_name("stats_probe.py"))
    logged_entry, logged_total = record["entry"][1], record["total"][1]
    # the lean connection's path (one list per read) and the per-event path: the same statistics
    # A per-event sample is stamped within microseconds of Locust's own stamp: at most the one
    # sample logged across a second boundary lands in the other second. A read's samples are
    # stamped once, when the read is delivered (as a socket read's are): all n samples of a read
    # may be logged by Locust before a boundary and the read delivered just after it (CI saw
    # exactly that: 7 of a 7-sample read moved one second on).
    per_event, per_read = 1, record["read_size"]
    pairs = (
        ("per event, entry", record["entry"], per_event),
        ("per event, total", record["total"], per_event),
        ("per read, entry", (record["by_read"][0], logged_entry), per_read),
        ("per read, total", (record["by_read"][1], logged_total), per_read),
    )
    for path, (batched, logged), slack in pairs:
        assert batched["num_requests"] == logged["num_requests"] == record["count"]
        assert batched["num_failures"] == 0
        assert batched["total_response_time"] == pytest.approx(logged["total_response_time"], rel=1e-12)
        for name in ("min_response_time", "max_response_time", "response_times", "median", "p95"):
            assert batched[name] == logged[name], name
        # each sample counted in the second it (or its read) arrived
        per_second = dict(batched["num_reqs_per_sec"])
        assert sum(per_second.values()) == record["count"]
        assert len(per_second) >= 3
        logged_per_second = dict(logged["num_reqs_per_sec"])
        moved = {s: n - logged_per_second.get(s, 0) for s, n in per_second.items()}
        assert all(abs(d) <= slack for d in moved.values()), (path, moved)
        # a sample moves only to the next second, never further: what one second lost the next gained
        assert sum(moved.values()) == 0, (path, moved)
    assert record["timer"] == [0, 3]
    assert record["after_report"] == 4
