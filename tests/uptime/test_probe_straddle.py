"""Uptime probe tries against the counters' window: a try stamped within STRADDLE_S of a boundary
scrape may be on either side of it, so counters-match-ledger counts it either way.

Why: a healthy gate on an outside CodeSync once failed counters-match-ledger by one GET /health.
A probe try stamped 10 ms before the after-scrape reached the target after it rendered its
counters (both stamps are scrape starts; the request and the rendering follow them by ms).
"""

from __future__ import annotations

from verify.checks.uptime import STRADDLE_S, split_tries

START, END = 1000.0, 1030.0  # the scrapes the window's counters are read at


def test_tries_well_inside_are_certain_and_tries_far_outside_are_not_counted() -> None:
    points = [(990.0, 1.0), (1006.0, 1.0), (1012.0, 0.0), (1040.0, 1.0)]
    assert split_tries(points, START, END) == ([(1006.0, 1.0), (1012.0, 0.0)], [])


def test_a_try_just_before_the_end_scrape_or_just_after_the_start_scrape_counts_either_way() -> None:
    points = [(START + 0.01, 1.0), (1015.0, 1.0), (END - 0.01, 1.0)]
    assert split_tries(points, START, END) == ([(1015.0, 1.0)], [(START + 0.01, 1.0), (END - 0.01, 1.0)])


def test_a_try_just_outside_a_boundary_may_have_been_counted_too() -> None:
    # stamped just after the end scrape began, its request can still beat the target's rendering
    points = [(START - 0.5, 1.0), (END + 0.5, 200.0)]
    assert split_tries(points, START, END) == ([], points)


def test_the_margin_is_exactly_straddle_s() -> None:
    edge = [(START - STRADDLE_S, 1.0), (START + STRADDLE_S, 1.0), (END - STRADDLE_S, 1.0), (END + STRADDLE_S, 1.0)]
    assert split_tries(edge, START, END) == ([(START + STRADDLE_S, 1.0), (END - STRADDLE_S, 1.0)], [])
