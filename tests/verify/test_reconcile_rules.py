"""The pure rules behind the reconciliation checks, on hand-made numbers."""

from __future__ import annotations

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
