"""Every dashboard panel beside the harness's own measurement: one row per panel query.

    >>> rows = panel_rows(ctx, panel_queries)
    >>> rows[0].cells()
    ('Request Rate', 'counter_rate', 'sum by (route) (rate(...[4s]))', 'route=/health 0..0.5 last 0', ...,
     '37 counted over the run', 'http: 37 requests', 'yes', '37±3.2', 'born series: 0; http{...}=1 + ...')

Why every panel, pass or fail: the report shows what each panel drew during the load next to
what the harness knows happened, so a reader can judge a passing dashboard as well as a
failing one. `dashboard-panels-match-ledger` fails exactly when a row says "no".

A panel whose meaning is known (verify/expectations/*.toml [[panel]]) agrees when (1) at
every step of the load window it shows what the reference query of its meaning shows, and
(2) evaluated over the whole run it agrees with the ledger:
- counter_rate: rate x the run's length counts the ledger's total up to Prometheus'
  extrapolation at the two edges (at most 1.1 scrape intervals of traffic each); only the
  upper bound holds when a series was born during the run (rate() never sees what it
  counted before its first scrape);
- error_ratio: zero exactly when the ledger saw no 5xx, and otherwise within the 5xx share
  that rate() can show for the ledger's counts (error_ratio_bounds): the 5xx count E and the
  other responses O = total - E each carry counter_rate's edge (E x 2.2 x scrape / window + 1),
  and each side may lack what its series born during the run counted before their first
  scrape (measured: that scrape's value, at most the side's ledger count); the panel divides
  the 5xx series by all series, so its value is N / (N + M) with N, M what rate() shows of E
  and O, and the bounds are E_lo / (E_lo + O_hi) .. E_hi / (E_hi + O_lo) (a "percent" panel
  shows 100 times that);
- gauge_peak: peaks within start+1 .. start+ups of what the ledger opened;
- latency_quantile: the client's quantile (raw ledger samples) against the panel's bucket by
  latency-quantiles-consistent's rule (verify.checks.reconcile.quantile_problem): never in a
  lower bucket (a server duration is part of the client's), and at the median or below at most
  one bucket higher; a tail quantile such as p95 may be slower on the client, whose stalls
  land in the tail (CI measured a client p95 of 26.6 ms over 38 samples against a panel at
  4.8 ms). A panel query that reads the wrong quantile or metric is caught by (1).
Other panels are listed with their series and "-" for the measurement.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from codesync_load.promql import extract
from verify.expectations import PanelSpec, ledger_total, predict_gauge
from verify.prom import Series

if TYPE_CHECKING:
    from verify.assets import Panel
    from verify.context import VerifyContext

COLUMNS = (
    "panel",
    "meaning",
    "query as evaluated",
    "series over the load window",
    "panel shows",
    "harness measured (ledger)",
    "agrees",
    "tolerance",
    "detail",
)
TOLERANCE = (
    "panel vs reference: 1e-6 relative at every step; counts: ±(2.2 x scrape / window) of the ledger + 1 "
    "(upper bound only when series were born during the run); gauges: start+1 .. start+ups; "
    "5xx share: zero exactly when the ledger has no 5xx, else within E_lo/(E_lo+O_hi) .. E_hi/(E_hi+O_lo) of the "
    "ledger's E 5xx and O other responses, each ± its edge as for counts, lower ends less what born series "
    "counted before their first scrape; quantiles: the client's bucket never below the panel's, at q <= 0.5 at most "
    "one above it"
)
Queries = Callable[..., list[str]]  # panel_queries(ctx, panel, range_s=None, rate_s=None)


@dataclass
class PanelRow:
    panel: str
    meaning: str
    query: str
    series: str
    shown: str = "-"
    measured: str = "-"
    agrees: str = "-"  # yes | no | - (meaning unknown)
    tolerance: str = "-"
    detail: str = ""

    def cells(self) -> tuple[str, ...]:
        return (
            self.panel,
            self.meaning,
            self.query,
            self.series,
            self.shown,
            self.measured,
            self.agrees,
            self.tolerance,
            self.detail,
        )


@dataclass(frozen=True)
class Span:
    """The load window as the comparisons read it."""

    start: float
    after: float
    scrape: float

    @property
    def whole(self) -> float:
        """The run plus one scrape before its first event."""
        return self.after - self.start + 1.5 * self.scrape


def series_summary(series: list[Series], limit: int = 4) -> str:
    """`labels min..max last v` per series (NaN points ignored); "no data" when none has points."""
    parts = []
    for s in series:
        values = [v for _t, v in s.points if not math.isnan(v)]
        if not values:
            continue
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()) if k != "__name__") or "{}"
        parts.append(f"{labels} {min(values):.4g}..{max(values):.4g} last {values[-1]:.4g}")
    if not parts:
        return "no data"
    more = f"; +{len(parts) - limit} more series" if len(parts) > limit else ""
    return "; ".join(parts[:limit]) + more


def _values(ctx: VerifyContext, query: str, at: float) -> list[float]:
    return [s.value for s in ctx.prom.instant(query, at) if not math.isnan(s.value)]


def _per_time(series: list[Series], combine: str) -> dict[float, float]:
    """One value per timestamp over all series of a range result (sum, or max for ratios)."""
    out: dict[float, float] = {}
    for s in series:
        for t, v in s.points:
            if math.isnan(v):
                continue
            out[t] = v if t not in out else (out[t] + v if combine == "sum" else max(out[t], v))
    return out


def reference_differs(
    ctx: VerifyContext, spec: PanelSpec, panel: Panel, query: str, span: Span
) -> tuple[str, str] | None:
    """(what differs, where) when the panel's query disagrees with the reference query at any
    step of the load window; None when they agree everywhere."""
    windows = [w for w in extract(query).windows if w[2] == "range"]
    window = f"{math.ceil(max(w[1] for w in windows))}s" if windows else "1m"
    reference = spec.reference.replace("$__rate_interval", window).replace("${__rate_interval}", window)
    combine = "sum" if spec.meaning in ("counter_rate", "gauge_peak") else "max"
    got = _per_time(ctx.prom.range(query, span.start, span.after, span.scrape), combine)
    want = _per_time(ctx.prom.range(reference, span.start, span.after, span.scrape), combine)
    factor = 100.0 if panel.unit == "percent" else 1.0
    for t in sorted(set(got) | set(want)):
        if t not in got:
            return f"no value where the reference shows {want[t]:g}", f"t={t:.0f}: {query}"
        if t not in want:
            return f"shows {got[t]:g} where the reference has no value", f"t={t:.0f}: {query}"
        expected = want[t] * factor
        if abs(got[t] - expected) > 1e-6 * max(1.0, abs(expected)):
            return f"shows {got[t]:g}, reference {expected:g}", f"t={t:.0f}: {query} vs {reference}"
    return None


def _counter(ctx: VerifyContext, spec: PanelSpec, panel: Panel, whole_query: str, span: Span, row: PanelRow) -> None:
    """Within the edges of the ledger's count; series born during the run lower the floor by what
    they counted before their first scrape (read from that scrape, as for the error ratio), never
    remove it: a panel that shows a fraction of the traffic fails on a fresh target too."""
    total, rows = ledger_total(ctx.ledger, spec.ledger, spec.select)
    seconds = math.ceil(span.whole)
    values = _values(ctx, whole_query, span.after)
    counted = sum(values) * seconds
    edge = total * 2.2 * span.scrape / span.whole + 1
    hidden, born = first_scrapes_of_born(ctx, whole_query, span)
    hidden = min(hidden, float(total))
    low = max(0.0, total - edge - hidden)
    row.shown = f"{counted:.1f} counted over the run ({seconds}s)" if values else "no data: 0 counted"
    row.measured = f"{spec.ledger}: {total}"
    row.tolerance = f"{low:.1f}..{total + edge:.1f}" if born else f"{total}±{edge:.1f}"
    ok = low <= counted <= total + edge
    row.agrees = "yes" if ok else "no"
    born_text = f"{born} series born in the run" + (
        f", {hidden:g} counted before their first scrape (rate() cannot see it)" if born else ""
    )
    row.detail = "; ".join([born_text, *([" + ".join(rows[:6])] if rows else [])])


def error_ratio_bounds(
    errors: int, total: int, extra: float, hidden_errors: float = 0.0, hidden_others: float = 0.0
) -> tuple[float, float]:
    """(lowest, highest) 5xx share a whole-run rate() ratio can show when the ledger counted
    `errors` 5xx among `total` responses.

    `extra` is the fraction of a series' increase that rate() may add by extrapolating to the
    two window edges (2.2 x scrape / window, as for counter_rate); `hidden_*` is what series
    born during the run counted before their first scrape, which rate() never sees. Each side
    (the 5xx E, the others O = total - E) is then within [count - hidden - edge, count + edge]
    with counter_rate's edge = count x extra + 1, and the panel shows N / (N + M) of them
    (the denominator sums the same per-series rates as the numerator, plus the others): least
    with the fewest 5xx and the most others, most the other way round.

        >>> error_ratio_bounds(200, 1000, 2.2 / 60)     # 20 % 5xx, 1 s scrapes, a 60 s run
        (0.1875..., 0.2130...)
    """
    others = max(0, total - errors)

    def side(count: int, hidden: float) -> tuple[float, float]:
        edge = count * extra + 1
        return max(0.0, count - min(max(hidden, 0.0), count) - edge), count + edge

    e_lo, e_hi = side(errors, hidden_errors)
    o_lo, o_hi = side(others, hidden_others)
    low = e_lo / (e_lo + o_hi) if e_lo + o_hi > 0 else 0.0
    high = e_hi / (e_hi + o_lo) if e_hi + o_lo > 0 else 1.0
    return low, min(1.0, high)


def error_ratio_agrees(shown: float, errors: int, low: float, high: float) -> bool:
    """Zero exactly when the ledger has no 5xx; otherwise non-zero and within [low, high]."""
    if errors == 0:
        return shown == 0
    return shown > 0 and low <= shown <= high


def _as_ledger_row(ctx: VerifyContext, kind: str, labels: dict[str, str]) -> dict[str, str] | None:
    """The ledger labels of a series, through the [[counter]] entry that maps this metric to
    the ledger kind (its label mapping and value translations reversed); None when none does."""
    counter = next(
        (c for c in ctx.expectations.counters if c.metric == labels.get("__name__") and c.ledger == kind), None
    )
    if counter is None:
        return None
    row = {}
    for metric_label, ledger_label in counter.labels.items():
        value = labels.get(metric_label, "")
        back = {v: k for k, v in counter.values.get(ledger_label, {}).items()}
        row[ledger_label] = back.get(value, value)
    return row


def _key(name: str, labels: dict[str, str]) -> tuple[str, frozenset]:
    return name, frozenset((k, v) for k, v in labels.items() if k != "__name__")


Firsts = dict[tuple[str, frozenset], tuple[dict[str, str], float]]  # series key -> (labels, first scrape's value)


def _born_firsts(ctx: VerifyContext, query: str, span: Span) -> Firsts:
    """Series `query` reads that were born during the run -> (labels, value at their first scrape)."""
    first: Firsts = {}
    window = f"{math.ceil(span.after - span.start) + 1}s"
    for sel in extract(query).selectors:
        if not sel.name:
            continue
        text = sel.instant
        before = {_key(sel.name, s.labels) for s in ctx.prom.instant(text, span.start)}
        # A counter only grows: over a window opening before its birth, its least value is its first scrape.
        for s in ctx.prom.instant(f"min_over_time({text}[{window}])", span.after):
            key = _key(sel.name, s.labels)
            if key not in before and key not in first and not math.isnan(s.value):
                first[key] = ({**s.labels, "__name__": sel.name}, s.value)
    return first


def first_scrapes_of_born(ctx: VerifyContext, query: str, span: Span) -> tuple[float, int]:
    """(what the series born during the run counted at their first scrape, how many were born)."""
    first = _born_firsts(ctx, query, span)
    return sum(value for _labels, value in first.values()), len(first)


def hidden_by_born(ctx: VerifyContext, spec: PanelSpec, query: str, span: Span) -> tuple[float, float, int]:
    """(5xx, other responses, series): what the series `query` reads that were born during the
    run had counted at their first scrape, which rate() cannot see (it starts from that value).
    A series is a 5xx series when its ledger labels pass the spec's errors selection; one the
    expectations cannot map to ledger labels counts on both sides (it might be either)."""
    first = _born_firsts(ctx, query, span)
    errors = others = 0.0
    for labels, value in first.values():
        row = _as_ledger_row(ctx, spec.ledger, labels)
        if row is None or spec.errors.admits(row):
            errors += value
        if row is None or not spec.errors.admits(row):
            others += value
    return errors, others, len(first)


def _error_ratio(
    ctx: VerifyContext, spec: PanelSpec, panel: Panel, whole_query: str, span: Span, row: PanelRow
) -> None:
    errors, _ = ledger_total(ctx.ledger, spec.ledger, spec.errors)
    total, _ = ledger_total(ctx.ledger, spec.ledger, spec.select)
    factor = 100.0 if panel.unit == "percent" else 1.0  # as reference_differs reads the panel
    values = _values(ctx, whole_query, span.after)
    shown = max(values) if values else 0.0  # no data: no 5xx series, nothing to divide
    hidden_e, hidden_o, born = hidden_by_born(ctx, spec, whole_query, span)
    low, high = error_ratio_bounds(errors, total, 2.2 * span.scrape / span.whole, hidden_e, hidden_o)
    unit = " %" if factor != 1.0 else ""
    row.shown = f"{shown:.4g}{unit} over the run" if values else "no data: no 5xx series"
    row.measured = f"{errors} 5xx of {total} responses" + (f" ({errors / total * factor:.4g}{unit})" if total else "")
    if errors:
        row.tolerance = f"{low * factor:.4g}..{high * factor:.4g}, not 0"
    else:
        row.tolerance = "0 (no 5xx in the ledger)"
    row.agrees = "yes" if error_ratio_agrees(shown / factor, errors, low, high) else "no"
    row.detail = (
        f"{born} series born in the run; before their first scrape they counted {hidden_e:g} 5xx and "
        f"{hidden_o:g} other responses, which rate() cannot see"
    )


def _gauge_peak(ctx: VerifyContext, spec: PanelSpec, query: str, span: Span, row: PanelRow) -> None:
    gauge = next((g for g in ctx.expectations.gauges if g.metric == spec.gauge), None)
    if gauge is None:
        row.agrees, row.detail = "no", f"no [[gauge]] {spec.gauge} in the expectations"
        return
    ups = sum(u for u, _d, _r in predict_gauge(ctx.ledger, gauge).values())
    start_v = sum(_values(ctx, query, span.start))
    by_time = _per_time(ctx.prom.range(query, span.start, span.after, max(span.scrape / 2, 0.5)), "sum")
    peak = max(by_time.values()) if by_time else None
    row.shown = "no data" if peak is None else f"peak {peak:g} (start {start_v:g})"
    row.measured = f"{ups} opened" if ups else "nothing opened"
    # Nothing opened: the level must stay where it started (a rise the ledger has no entry for is
    # wrong), not "anything goes".
    row.tolerance = f"{start_v + 1:g}..{start_v + ups:g}" if ups else f"<= {start_v:g} (nothing opened)"
    ok = (peak is not None and start_v + 1 <= peak <= start_v + ups) if ups else (peak or 0.0) <= start_v
    row.agrees = "yes" if ok else "no"


def _latency(ctx: VerifyContext, spec: PanelSpec, panel: Panel, whole_query: str, span: Span, row: PanelRow) -> None:
    from verify.checks.reconcile import TWO_SIDED_UP_TO_Q, bucket_index, client_quantile, quantile_problem, read_by

    values = _values(ctx, whole_query, span.after)
    shown = max(values) if values else None
    row.shown = "no data" if shown is None else f"{shown:.4g} s over the run"
    name = next((n for n in spec.client_samples if ctx.ledger.samples(n)), None)
    hist = next((h for h in ctx.expectations.histograms if set(h.client_samples) & set(spec.client_samples)), None)
    if shown is None:  # the panel draws nothing for a run that was timed: a latency panel with no data is wrong
        row.measured = "no client samples" if name is None else f"{len(ctx.ledger.samples(name))} {name} samples"
        row.agrees, row.tolerance, row.detail = "no", "a value", "the panel shows no latency over the run"
        return
    if name is None or hist is None:
        row.measured = "no client samples" if name is None else "-"
        row.agrees, row.tolerance = "-", "-"
        row.detail = "nothing to compare the panel with: the ledger holds no client samples of its meaning"
        return
    samples = ctx.ledger.samples(name)
    client = client_quantile(samples, spec.quantile)
    bounds = sorted(float(dict(k)["le"]) for k in read_by(ctx, f"{hist.metric}_bucket", hist.jobs, ("le",), span.after))
    server_b, client_b = bucket_index(bounds, shown), bucket_index(bounds, client)

    def label(i: int) -> str:
        return "+Inf" if i >= len(bounds) or math.isinf(bounds[i]) else f"{bounds[i]:g}"

    row.measured = f"client p{spec.quantile * 100:g} {client:.4g} s of {len(samples)} {name} samples"
    lowest = f"client bucket le={label(server_b)}"
    row.tolerance = lowest + (f" or le={label(server_b + 1)}" if spec.quantile <= TWO_SIDED_UP_TO_Q else " or above")
    problem = quantile_problem(spec.quantile, server_b, client_b)
    row.agrees = "no" if problem else "yes"
    row.detail = f"panel bucket le={label(server_b)}, client bucket le={label(client_b)}" + (
        f": {problem}" if problem else ""
    )


MEANINGS = {
    "counter_rate": _counter,
    "error_ratio": _error_ratio,
    "latency_quantile": _latency,
}


def panel_rows(ctx: VerifyContext, queries: Queries, span: Span) -> list[PanelRow]:
    """One row per query of every panel, then one per known meaning whose panel is missing."""
    specs = {spec.title: spec for spec in ctx.expectations.panels}
    rows = []
    for panel in ctx.dashboard.panels:
        spec = specs.pop(panel.title, None)
        evaluated = queries(ctx, panel, range_s=span.after - span.start)
        if not evaluated:
            rows.append(PanelRow(panel.title, spec.meaning if spec else "-", "-", "no Prometheus query"))
            if spec:
                rows[-1].agrees = "no"
            continue
        for i, query in enumerate(evaluated):
            series = series_summary(ctx.prom.range(query, span.start, span.after, span.scrape))
            row = PanelRow(panel.title, spec.meaning if spec and i == 0 else "-", query, series)
            rows.append(row)
            if spec and i == 0:
                _known(ctx, spec, panel, queries, span, row)
    for spec in specs.values():
        rows.append(PanelRow(spec.title, spec.meaning, "-", "-", agrees="no", detail="no panel with this title"))
    return rows


def _known(ctx: VerifyContext, spec: PanelSpec, panel: Panel, queries: Queries, span: Span, row: PanelRow) -> None:
    if spec.reference:
        differs = reference_differs(ctx, spec, panel, queries(ctx, panel)[0], span)
        if differs:
            row.agrees, row.tolerance = "no", "1e-6 relative to the reference"
            row.shown, row.detail = differs
            return
    if spec.meaning == "gauge_peak":
        _gauge_peak(ctx, spec, queries(ctx, panel)[0], span, row)
        return
    handler = MEANINGS.get(spec.meaning)
    if handler is None:
        row.detail = f"meaning {spec.meaning!r} has no ledger comparison"
        return
    if spec.meaning == "counter_rate" and not spec.reference:
        row.detail = "no reference query: compared step by step only"
        return
    whole = queries(ctx, panel, range_s=span.whole, rate_s=span.whole)[0]
    handler(ctx, spec, panel, whole, span, row)
