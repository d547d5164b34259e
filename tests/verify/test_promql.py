"""The PromQL extractor on the expressions the monitoring files really use, and on the corners
of the grammar that a naive regex gets wrong."""

from __future__ import annotations

import pytest
import yaml

from codesync_load.promql import Matcher, PromQLError, extract, parse_duration_s, tokenize
from verify.context import MONITORING
from verify.grafana import GrafanaTimes, substitute


def test_selector_matchers_grouping_and_range() -> None:
    refs = extract(
        'sum by (job, instance) (rate(codesync_http_requests_total{job="codesync-backend", status_code=~"5.."}[5m]))'
    )
    assert [str(s) for s in refs.selectors] == [
        'codesync_http_requests_total{job="codesync-backend", status_code=~"5.."}[5m]'
    ]
    sel = refs.selectors[0]
    assert sel.matchers == (Matcher("job", "=", "codesync-backend"), Matcher("status_code", "=~", "5.."))
    assert sel.range_s == 300.0
    assert refs.grouping_labels == {"job", "instance"}
    assert refs.windows == [("5m", 300.0, "range")]
    assert refs.functions == {"sum", "rate"}


def test_grouping_after_the_call_and_histogram_quantile() -> None:
    refs = extract("histogram_quantile(0.95, sum(rate(http_request_duration_seconds_bucket[5m])) by (le)) > 2")
    assert refs.metric_names == ["http_request_duration_seconds_bucket"]
    assert refs.grouping_labels == {"le"}


def test_keywords_numbers_and_operators_are_not_series() -> None:
    refs = extract(
        '1 - avg by (job) (rate(node_cpu_seconds_total{mode="idle"}[5m])) > bool 0.80 '
        "and on (job) group_left (instance) up unless ignoring (mode) Inf"
    )
    assert refs.metric_names == ["node_cpu_seconds_total", "up"]
    assert refs.grouping_labels == {"job", "instance", "mode"}


def test_subquery_offset_and_label_replace() -> None:
    refs = extract(
        'label_replace(max_over_time(rate(a_total{b="c"}[1m])[10m:30s]), "dst", "$1", "src", "(.*)") '
        "+ ignoring(dst) x offset -5m + y[5m:]"
    )
    assert [s.name for s in refs.selectors] == ["a_total", "x", "y"]
    assert refs.selectors[0].range_s == 60.0
    assert refs.selectors[2].range_s is None  # y[5m:] is a subquery, not a range selector
    assert refs.windows == [
        ("1m", 60.0, "range"),
        ("10m", 600.0, "subquery"),
        ("30s", 30.0, "step"),
        ("5m", 300.0, "subquery"),
    ]
    assert refs.created_labels == {"dst"}


def test_name_in_braces_and_strings_with_escapes() -> None:
    refs = extract('{__name__="zz", path!="/a\\"b", x!~`raw\\d`} # comment with rate(fake[1m])')
    sel = refs.selectors[0]
    assert sel.name == "zz"
    assert sel.matcher("path") == Matcher("path", "!=", '/a"b')
    assert sel.matcher("x") == Matcher("x", "!~", "raw\\d")
    assert refs.windows == []


def test_matcher_semantics_are_anchored() -> None:
    assert Matcher("job", "=~", "codesync-backend|codesync-yjs").matches("codesync-yjs")
    assert not Matcher("job", "=~", "codesync").matches("codesync-yjs")
    assert Matcher("fstype", "!~", "tmpfs|overlay").matches("ext4")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30.0), ("5m", 300.0), ("1h30m", 5400.0), ("500ms", 0.5), ("2d", 172800.0), ("15s", 15.0)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize("bad", ["rate(x[5m]", "x{job=}", 'x{job="a"', "x[]", "sum(x) by (le", "x ~ y", "rate(x[5q])"])
def test_unreadable_expressions_raise_with_position(bad: str) -> None:
    with pytest.raises(PromQLError):
        extract(bad)


def test_tokenizer_reports_offset() -> None:
    with pytest.raises(PromQLError, match="offset 2"):
        tokenize("x ~ y")


def test_every_expression_of_the_project_rules_reads() -> None:
    """All ten alerts of monitoring/alerts.yml: exactly these series."""
    names = set()
    for group in yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"]:
        for rule in group["rules"]:
            names |= set(extract(rule["expr"]).metric_names)
    assert names == {
        "codesync_http_requests_total",
        "codesync_http_request_duration_seconds_bucket",
        "codesync_rate_limit_hits_total",
        "node_memory_MemAvailable_bytes",
        "node_memory_MemTotal_bytes",
        "node_cpu_seconds_total",
        "node_filesystem_avail_bytes",
        "node_filesystem_size_bytes",
        "up",
        "pg_up",
        "redis_up",
    }


# The corners the monitoring tests rely on (formerly checked against their own scanner):
# no series may be missed, and no function, keyword or label name taken for one.


def test_aggregations_label_lists_and_offsets_are_not_series() -> None:
    refs = extract(
        'histogram_quantile(0.95, sum by (job, le) (rate(a_bucket{job="x", route=~"/api/.+"}[5m])))'
        " / on (job) group_left (instance) b offset 1m > bool 2e3"
    )
    assert [s.name for s in refs.selectors] == ["a_bucket", "b"]
    assert refs.selectors[0].matchers == (Matcher("job", "=", "x"), Matcher("route", "=~", "/api/.+"))
    assert refs.selectors[1].matchers == ()


def test_braces_inside_strings_and_name_matchers() -> None:
    refs = extract('{__name__="up", job="a{b}"} or label_replace(c, "dst", "$1", "src", "(.*)")')
    assert [(s.name, s.label_names) for s in refs.selectors] == [("up", {"job"}), ("c", set())]
    assert refs.selectors[0].matcher("job") == Matcher("job", "=", "a{b}")


def test_matchers_follow_their_operator() -> None:
    (sel,) = extract('x{job=~"codesync-.*", fstype!~"tmpfs|overlay"}').selectors
    job, fstype = sel.matcher("job"), sel.matcher("fstype")
    assert job is not None and fstype is not None
    assert job.matches("codesync-yjs")
    assert not job.matches("node-exporter")
    assert fstype.matches("ext4") and not fstype.matches("tmpfs")
    assert sel.matcher("instance") is None


def test_grafana_windows_read_after_substitution() -> None:
    expr = substitute("rate(x[5m]) + rate(y[$__rate_interval])", {}, GrafanaTimes(15, 15, 600))
    assert [w[0] for w in extract(expr).windows] == ["5m", "60s"]


@pytest.mark.parametrize("bad", ["5 minutes", "1s1m", "5x", "m", ""])
def test_durations_reject_what_prometheus_rejects(bad: str) -> None:
    with pytest.raises(PromQLError, match="is not a Prometheus duration"):
        parse_duration_s(bad)


def test_plain_seconds_are_a_duration_in_promql() -> None:
    assert parse_duration_s("300") == 300.0
