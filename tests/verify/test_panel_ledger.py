"""The arithmetic behind three dashboard judgments, without a Prometheus: the 5xx share an
Error Rate panel may show for the ledger's counts and the bucket a latency panel's quantile
may sit in against the client's (verify/panel_ledger.py), and when a panel
that shows nothing is explained by the ledger (verify/checks/dashboard.py). The same rules
against a real twin and Prometheus are in test_dashboard_grafana.py.
"""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import pytest

from codesync_load.ledger import Ledger
from verify.checks.dashboard import nothing_counted
from verify.expectations import load_expectations
from verify.panel_ledger import PanelRow, Span, _error_ratio, _latency, error_ratio_agrees, error_ratio_bounds
from verify.prom import Sample

EXPECTATIONS = load_expectations()
ERROR_RATE = next(p for p in EXPECTATIONS.panels if p.title == "Error Rate")
RESPONSE_P95 = next(p for p in EXPECTATIONS.panels if p.title == "Response Time (p95)")
BUCKETS = (0.005, 0.015, 0.05, 0.1, 0.5, 1.0, float("inf"))


def agrees(shown: float, errors: int, total: int, extra: float, *hidden: float) -> bool:
    return error_ratio_agrees(shown, errors, *error_ratio_bounds(errors, total, extra, *hidden))


def test_a_panel_at_1_percent_against_a_ledger_at_20_percent_disagrees() -> None:
    # 200 5xx of 1000 responses over a 60 s run scraped every second: rate() may add up to
    # 2.2 scrapes of a series' own increase at the two edges, the same edge counter_rate allows.
    extra = 2.2 * 1.0 / 60
    low, high = error_ratio_bounds(200, 1000, extra)
    assert low == pytest.approx((200 - 200 * extra - 1) / ((200 - 200 * extra - 1) + (800 + 800 * extra + 1)))
    assert high == pytest.approx((200 + 200 * extra + 1) / ((200 + 200 * extra + 1) + (800 - 800 * extra - 1)))
    assert 0.18 < low < 0.2 < high < 0.22
    assert not agrees(0.01, 200, 1000, extra)  # the old rule ("non-zero when there were 5xx") passed this
    assert agrees(0.2, 200, 1000, extra)
    assert agrees(0.195, 200, 1000, extra) and agrees(0.21, 200, 1000, extra)
    assert not agrees(0.25, 200, 1000, extra)


def test_zero_exactly_when_the_ledger_has_no_5xx() -> None:
    assert agrees(0.0, 0, 1000, 0.05)
    assert not agrees(0.001, 0, 1000, 0.05)  # any 5xx on the panel with none in the ledger
    # One 5xx may vanish in the edges (the lower end is 0), but the panel must not show 0.
    assert error_ratio_bounds(1, 1000, 0.05)[0] == 0.0
    assert not agrees(0.0, 1, 1000, 0.05)
    assert agrees(0.001, 1, 1000, 0.05)


def test_what_born_series_counted_before_their_first_scrape_widens_only_the_lower_ends() -> None:
    extra = 2.2 / 60
    plain = error_ratio_bounds(200, 1000, extra)
    hidden_5xx = error_ratio_bounds(200, 1000, extra, 50, 0)
    hidden_other = error_ratio_bounds(200, 1000, extra, 0, 300)
    assert hidden_5xx[0] < plain[0] and hidden_5xx[1] == plain[1]  # fewer 5xx seen: the share may be lower
    assert hidden_other[0] == plain[0] and hidden_other[1] > plain[1]  # fewer others seen: it may be higher
    # A born series cannot hide more than its side counted: the bounds stay within [0, 1].
    assert error_ratio_bounds(200, 1000, extra, 10_000, 10_000) == (0.0, 1.0)
    # Still a judgment when a share of each side was hidden: 1 % against 20 % fails.
    assert not agrees(0.01, 200, 1000, extra, 20, 80)


class FakeProm:
    """Answers the whole-run query with `value`; no series were born (nothing else answers)."""

    def __init__(self, query: str, value: float | None) -> None:
        self.query, self.value = query, value

    def instant(self, expr: str, at: float | None = None) -> list[Sample]:
        return [Sample({}, self.value)] if expr == self.query and self.value is not None else []


def error_rate_row(unit: str, value: float | None, errors: int, total: int) -> PanelRow:
    ledger = Ledger()
    ledger.count("http", "GET", "/api/auth/me", 500, n=errors)
    ledger.count("http", "GET", "/api/auth/me", 401, n=total - errors)
    query = 'sum(rate(codesync_http_requests_total{status_code=~"5.."}[61s])) / sum(rate(x[61s]))'
    ctx = SimpleNamespace(ledger=ledger, expectations=EXPECTATIONS, prom=FakeProm(query, value))
    row = PanelRow("Error Rate", "error_ratio", query, "-")
    _error_ratio(ctx, ERROR_RATE, SimpleNamespace(unit=unit), query, Span(1000.0, 1060.0, 1.0), row)
    return row


def test_a_percent_panel_is_read_as_100_times_the_share() -> None:
    assert error_rate_row("percent", 20.0, 200, 1000).agrees == "yes"
    assert error_rate_row("percent", 0.2, 200, 1000).agrees == "no"  # 0.2 % where the ledger has 20 %
    assert error_rate_row("percentunit", 0.2, 200, 1000).agrees == "yes"  # Grafana's 0..1 unit
    row = error_rate_row("percent", 20.0, 200, 1000)
    assert row.measured == "200 5xx of 1000 responses (20 %)" and row.shown == "20 % over the run"
    low, high = (float(x) for x in row.tolerance.removesuffix(", not 0").split(".."))
    assert low < 20 < high
    assert error_rate_row("percentunit", None, 0, 1000).agrees == "yes"  # no 5xx series: no data
    assert error_rate_row("percentunit", None, 3, 1000).agrees == "no"


class LatencyProm:
    """Answers the panel's whole-run query with `shown` and the bucket read with BUCKETS' bounds."""

    def __init__(self, query: str, shown: float) -> None:
        self.query, self.shown = query, shown

    def instant(self, expr: str, at: float | None = None) -> list[Sample]:
        if expr == self.query:
            return [Sample({}, self.shown)]
        if expr.startswith("sum by (le) (codesync_http_request_duration_seconds_bucket{"):
            return [Sample({"le": "+Inf" if math.isinf(le) else str(le)}, 1.0) for le in BUCKETS]
        return []


def latency_row(shown: float, client_ms: list[float], quantile: float = 0.95) -> PanelRow:
    ledger = Ledger()
    ledger.sample_many("http_s", [ms / 1000 for ms in client_ms])
    query = "histogram_quantile(0.95, sum by (le) (rate(x[4s])))"
    ctx = SimpleNamespace(ledger=ledger, expectations=EXPECTATIONS, prom=LatencyProm(query, shown))
    spec = dataclasses.replace(RESPONSE_P95, quantile=quantile)
    row = PanelRow(spec.title, "latency_quantile", query, "-")
    _latency(ctx, spec, SimpleNamespace(unit="s"), query, Span(1000.0, 1060.0, 1.0), row)
    return row


def test_a_latency_panel_is_judged_by_the_rule_of_latency_quantiles_consistent() -> None:
    steady = [4.0] * 36 + [4.5, 4.8]  # 38 requests, all in the panel's bucket le=0.005
    assert latency_row(0.0048, steady).agrees == "yes"
    # The CI run that failed under the old two-sided rule: one client stall of 26.6 ms lands in
    # the p95 of 38 samples (nearest rank: the 37th), two buckets above the panel's 4.8 ms. A
    # tail may be slower on the client; the row says so and agrees.
    stalled = [4.0] * 36 + [26.6, 30.0]
    row = latency_row(0.0048, stalled)
    assert row.measured == "client p95 0.0266 s of 38 http_s samples"
    assert (row.agrees, row.tolerance) == ("yes", "client bucket le=0.005 or above")
    assert row.detail == "panel bucket le=0.005, client bucket le=0.05"
    # A client faster than the panel is impossible when both measure the same requests.
    row = latency_row(0.04, steady)
    assert row.agrees == "no"
    assert row.detail.endswith(": client faster than server: impossible if both measure the same requests")
    # At the median the client may be at most one bucket slower.
    assert latency_row(0.0048, stalled, quantile=0.5).agrees == "yes"
    slow_median = [26.6] * 38
    row = latency_row(0.0048, slow_median, quantile=0.5)
    assert (row.agrees, row.tolerance) == ("no", "client bucket le=0.005 or le=0.015")


def quiet_ctx(ledger: Ledger, complete: bool = True) -> SimpleNamespace:
    return SimpleNamespace(expectations=EXPECTATIONS, ledger=ledger, ledger_doc={"complete": complete})


def test_a_panel_showing_nothing_is_explained_only_by_the_ledgers_own_zero() -> None:
    healthy = Ledger()
    healthy.count("http", "GET", "/api/sessions", 200, n=36)
    healthy.count("http", "POST", "/api/sessions/:id/search", 0)  # no answer: not a response
    assert nothing_counted(quiet_ctx(healthy), "Error Rate", 0) == "no 5xx of 36 responses"
    assert nothing_counted(quiet_ctx(healthy), "Rate Limit Hits", 0) == "no rate-limit rejection"
    # Only the query that carries the panel's meaning; panels whose meaning is unknown, or whose
    # meaning is not a count, never.
    assert nothing_counted(quiet_ctx(healthy), "Error Rate", 1) is None
    assert nothing_counted(quiet_ctx(healthy), "Redis Operations", 0) is None
    assert nothing_counted(quiet_ctx(healthy), "Active Sessions", 0) is None
    # What the panel counts happened: its showing nothing is not explained.
    assert nothing_counted(quiet_ctx(healthy), "Request Rate", 0) is None
    burst = Ledger()
    burst.count("http", "GET", "/api/sessions", 500)
    assert nothing_counted(quiet_ctx(burst), "Error Rate", 0) is None
    # An incomplete ledger, or one that recorded nothing, cannot say that nothing happened.
    assert nothing_counted(quiet_ctx(healthy, complete=False), "Error Rate", 0) is None
    assert nothing_counted(quiet_ctx(Ledger()), "Rate Limit Hits", 0) is None
