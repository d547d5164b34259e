"""The selector scanner the monitoring tests rely on: it must neither miss a series nor take
a function, keyword or label name for one.

    $ .venv/bin/pytest tests/monitoring/test_promql_scanner.py
"""

from __future__ import annotations

import pytest

from tests.monitoring._promql import duration_seconds, ranges, selectors


def test_aggregations_label_lists_and_ranges_are_not_series() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (job, le) (rate(a_bucket{job="x", route=~"/api/.+"}[5m])))'
        " / on (job) group_left (instance) b offset 1m > bool 2e3"
    )
    found = selectors(expr)
    assert [s.name for s in found] == ["a_bucket", "b"]
    assert found[0].matchers == {"job": ("=", "x"), "route": ("=~", "/api/.+")}
    assert found[1].matchers == {}


def test_braces_inside_strings_and_name_matchers() -> None:
    found = selectors('{__name__="up", job="a{b}"} or label_replace(c, "dst", "$1", "src", "(.*)")')
    assert [(s.name, s.matchers) for s in found] == [("up", {"job": ("=", "a{b}")}), ("c", {})]


def test_label_matches_follows_the_operator() -> None:
    (sel,) = selectors('x{job=~"codesync-.*", fstype!~"tmpfs|overlay"}')
    assert sel.label_matches("job", "codesync-yjs")
    assert not sel.label_matches("job", "node-exporter")
    assert sel.label_matches("fstype", "ext4") and not sel.label_matches("fstype", "tmpfs")
    assert not sel.label_matches("instance", "anything")


def test_ranges_and_durations() -> None:
    assert ranges("rate(x[5m]) + rate(y[$__rate_interval])") == ["5m", "$__rate_interval"]
    assert duration_seconds("1h30m") == 5400
    assert duration_seconds("15s") == 15
    with pytest.raises(ValueError):
        duration_seconds("5 minutes")
