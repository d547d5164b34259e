"""Gate evaluation on a synthetic, schema-valid ledger written with the project's own Ledger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codesync_load.gates import client_value, evaluate_gates, parse_gate, parse_metric, percentile
from codesync_load.ledger import Ledger


def synthetic_ledger(path: Path) -> dict:
    """100 propagation samples 1..100 ms, 200 HTTP answers of which 3 are 500s, 1 transport failure."""
    ledger = Ledger(meta={"profile": "synthetic", "started_at": 1000.0})
    ledger.phase_start("steady", at=1000.0)
    for ms in range(1, 101):
        ledger.sample("yjs_propagation_s", ms / 1000.0)
    for ms in (5, 7, 9):
        ledger.sample("chat_rtt_s", ms / 1000.0)
    ledger.count("http", "GET", "/api/sessions", 200, n=150)
    ledger.count("http", "PUT", "/api/sessions/:id/files/:path/content", 200, n=46)
    ledger.count("http", "GET", "/api/sessions/:id", 500, n=3)
    ledger.count("http", "GET", "/api/sessions/:id/files", 429, n=1)
    ledger.count("rate_limited", "files")
    ledger.count("failure", "http", "GET /api/sessions", "TRANSPORT")
    ledger.count("connection", "yjs", "opened", n=4)
    ledger.count("connection", "yjs", "refused", n=2)
    ledger.result("convergence", True, subject="doc-a")
    ledger.result("convergence", False, subject="doc-b", detail="texts differ")
    ledger.phase_end(at=1010.0)
    ledger.write(path, complete=True)
    return json.loads(path.read_text())


@pytest.fixture
def doc(tmp_path: Path) -> dict:
    return synthetic_ledger(tmp_path / "ledger.json")


def test_percentile_interpolates_between_order_statistics() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile(list(range(1, 101)), 95) == pytest.approx(95.05)
    assert percentile([7.0], 99) == 7.0


def test_client_values_are_exact(doc: dict) -> None:
    assert client_value(parse_metric("p95(edit_propagation)", "t"), doc)[0] == pytest.approx(0.09505)
    assert client_value(parse_metric("max(edit_propagation)", "t"), doc)[0] == pytest.approx(0.100)
    assert client_value(parse_metric("mean(chat_rtt)", "t"), doc)[0] == pytest.approx(0.007)
    assert client_value(parse_metric("count(edit_propagation)", "t"), doc)[0] == 100
    # (3 answers >= 500 + 1 transport failure) / (200 answers + 1 failure)
    value, note = client_value(parse_metric("error_rate", "t"), doc)
    assert value == pytest.approx(4 / 201) and note == "4/201 HTTP attempts"
    assert client_value(parse_metric("requests", "t"), doc)[0] == 200
    assert client_value(parse_metric("rate_limited", "t"), doc)[0] == 1
    assert client_value(parse_metric("refused", "t"), doc)[0] == 2
    assert client_value(parse_metric("checks_failed", "t"), doc)[0] == 1
    no_samples = parse_metric("p95(yjs_connect_sync)", "t")
    assert client_value(no_samples, doc) == (None, "no yjs_connect_sync_s samples in the ledger")


def test_gate_verdicts(doc: dict) -> None:
    texts = {
        "p95(edit_propagation) < 100ms": "pass",
        "p95(edit_propagation) < 95ms": "fail",  # 95.05 ms
        "p50(edit_propagation) == 50.5ms": "pass",
        "error_rate < 1%": "fail",  # 1.99 %
        "error_rate < 2%": "pass",
        "failures == 0": "fail",
        "checks_failed <= 1": "pass",
        "p95(yjs_connect_sync) < 1s": "fail",  # no samples: a gate that reads nothing fails
    }
    results = evaluate_gates([parse_gate(t, "t:1") for t in texts], [doc])
    assert {r.name: r.verdict for r in results} == {f"gate: {t}": v for t, v in texts.items()}
    failed = next(r for r in results if r.name == "gate: error_rate < 1%")
    assert failed.summary == "error_rate = 1.99%, expected < 1%"
    assert failed.evidence is not None and failed.evidence.rows[0][-1] == "4/201 HTTP attempts"
    missing = next(r for r in results if "yjs_connect_sync" in r.name)
    assert missing.measured == "no data"


def test_gate_over_trials_passes_only_when_every_trial_does(tmp_path: Path, doc: dict) -> None:
    other = json.loads(json.dumps(doc))
    other["samples"]["yjs_propagation_s"] = [0.001] * 10
    gate = parse_gate("p95(edit_propagation) < 50ms", "t:1")
    assert evaluate_gates([gate], [other])[0].verdict == "pass"
    combined = evaluate_gates([gate], [other, doc])[0]
    assert combined.verdict == "fail"
    assert [row[0] for row in combined.evidence.rows] == [1, 2]
    assert [row[3] for row in combined.evidence.rows] == ["yes", "NO"]
