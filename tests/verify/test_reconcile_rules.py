"""The pure rules behind the reconciliation checks, on hand-made numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from verify.checks.reconcile import (
    TWO_SIDED_UP_TO_Q,
    bucket_index,
    client_quantile,
    quantile_problem,
    server_quantile_bucket,
)

BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, float("inf")]


def test_the_client_can_never_be_a_bucket_faster_than_the_server_at_any_quantile() -> None:
    for q in (0.5, 0.95, 0.99):
        assert quantile_problem(q, server=3, client=2) == (
            "client faster than server: impossible if both measure the same requests"
        )


@pytest.mark.parametrize("q", [0.5, 0.95])
def test_the_same_or_the_next_bucket_agrees(q: float) -> None:
    assert quantile_problem(q, server=3, client=3) is None
    assert quantile_problem(q, server=3, client=4) is None


def test_a_median_two_buckets_slower_fails_but_a_tail_two_buckets_slower_is_a_client_stall() -> None:
    assert TWO_SIDED_UP_TO_Q == 0.5
    assert quantile_problem(0.5, server=1, client=3) == (
        "client more than one bucket slower than the server at the median or below"
    )
    # The A/B benchmark's stalled trial: client p95 196 ms, server p95 in le=0.05.
    server = bucket_index(BOUNDS, 0.04)
    client = bucket_index(BOUNDS, 0.196)
    assert (server, client) == (3, 5)
    assert quantile_problem(0.95, server, client) is None


def test_quantile_ranks_use_the_same_nearest_rank_rule_on_both_sides() -> None:
    cumulative = [(0.005, 10.0), (0.01, 50.0), (0.025, 95.0), (0.05, 100.0), (float("inf"), 100.0)]
    assert server_quantile_bucket(cumulative, 0.5) == 1
    assert server_quantile_bucket(cumulative, 0.95) == 2
    assert server_quantile_bucket(cumulative, 0.96) == 3
    assert server_quantile_bucket([(0.005, 0.0), (float("inf"), 0.0)], 0.5) is None
    samples = [i / 1000 for i in range(1, 101)]  # 1..100 ms
    assert client_quantile(samples, 0.5) == 0.05
    assert client_quantile(samples, 0.95) == 0.095


def test_a_gauge_timeline_follows_stamped_opens_and_closes_and_loaded_documents_count_once() -> None:
    from codesync_load.ledger import Ledger
    from verify.checks.reconcile import level_range
    from verify.expectations import gauge_timeline, load_expectations, predict_gauge

    table = load_expectations()
    connections = next(g for g in table.gauges if g.metric == "codesync_websocket_connections_active")
    documents = next(g for g in table.gauges if g.metric == "codesync_yjs_documents_active")
    ledger = Ledger()
    for at, document, event in [
        (1.0, "a", "opened"),
        (2.0, "a", "opened"),  # a second connection to a loaded document loads nothing
        (3.0, "b", "opened"),
        (4.0, "a", "closed"),
        (5.0, "a", "closed"),  # the last one out unloads it
        (6.0, "a", "opened"),
    ]:
        ledger.event("connection", "yjs", event, at=at)
        ledger.event("yjs_document", document, event, at=at)
    yjs = (("type", "yjs"),)
    assert gauge_timeline(ledger, connections) == {yjs: [(1.0, 1), (2.0, 2), (3.0, 3), (4.0, 2), (5.0, 1), (6.0, 2)]}
    docs = gauge_timeline(ledger, documents)
    assert docs == {(): [(1.0, 1), (2.0, 1), (3.0, 2), (4.0, 2), (5.0, 1), (6.0, 2)]}
    # ends with a and b loaded: 2 distinct documents opened, none of them closed for good
    assert predict_gauge(ledger, documents)[()][:2] == (2, 0)
    assert level_range(docs[()], 4.5, 5.5) == (1, 2)
    assert level_range(docs[()], 0.0, 0.5) == (0, 0)
    assert level_range(docs[()], 0.5, 1.5) == (0, 1)
    assert gauge_timeline(Ledger(), connections) is None  # a ledger without stamps: bounded check


def test_every_backend_contract_metric_is_reconciled_or_says_why_not(tmp_path: Path) -> None:
    from codesync_load.contract import load_contract
    from verify.checks import REGISTRY
    from verify.context import VerifyContext, VerifyOptions

    ctx = VerifyContext(VerifyOptions())
    result = REGISTRY["contract-metrics-reconciled"].run(ctx)
    assert result.verdict == "pass", result.render()
    assert result.summary.startswith("12 contract metrics reconciled (8 as counters, 4 as gauges); 8 not")
    names = {m.name for m in load_contract().metrics}
    assert len(names) == 20
    text = (Path(__file__).resolve().parents[2] / "verify/expectations/backend.toml").read_text()
    cut = tmp_path / "backend.toml"
    cut.write_text(text.replace('process_max_fds = "a limit of the process, not moved by load"\n', ""))
    result = REGISTRY["contract-metrics-reconciled"].run(VerifyContext(VerifyOptions(expectations=cut)))
    assert result.verdict == "fail", result.render()
    assert result.evidence is not None and [r[0] for r in result.evidence.rows] == ["process_max_fds"]
