"""Dashboard checks: every panel's query reads exported series, returns data, stays in its job,
and the panels whose meaning is known show what the ledger says happened.

    >>> REGISTRY["dashboard-panels-return-data"].run(ctx).evidence.rows
    [('Active Sessions', 'sessions_active', 'no data at the plateau')]

Panels are evaluated the way Grafana would send them ($__rate_interval, $__interval,
$__range and dashboard variables substituted; see verify/grafana.py) at the end of the
plateau. A known panel must show, at every step of the load window, exactly what the
reference query of its meaning shows (verify/expectations/*.toml), and that reference must
agree with the ledger: with its window set to the whole run, rate x window is the run's
increase up to Prometheus' extrapolation at the two edges (at most 1.1 scrape intervals of
traffic each) -- except that rate() never sees what a series born during the run counted
before its first scrape, so with born series only the upper bound holds.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from codesync_load.promql import PromQLError, extract
from verify.checks.base import CheckResult, Evidence, check
from verify.checks.static import missing_series, unknown_labels
from verify.expectations import PanelSpec, ledger_total, predict_gauge
from verify.grafana import GrafanaTimes, substitute, unresolved

if TYPE_CHECKING:
    from verify.assets import Panel
    from verify.context import VerifyContext


def _scrape_s(ctx: VerifyContext) -> float:
    try:
        intervals = ctx.live_scrape_intervals
    except Exception:
        intervals = {}
    if not intervals:
        try:
            intervals = ctx.scrape_intervals
        except Exception:
            intervals = {}
    codesync = [v for k, v in intervals.items() if k.startswith("codesync")]
    return max(codesync or list(intervals.values()) or [15.0])


def panel_queries(
    ctx: VerifyContext, panel: Panel, range_s: float | None = None, rate_s: float | None = None
) -> list[str]:
    scrape = _scrape_s(ctx)
    times = GrafanaTimes(interval_s=scrape, scrape_s=scrape, range_s=range_s or 3600.0)
    out = []
    for expr in panel.exprs:
        text = substitute(expr, ctx.dashboard.variables, times)
        if rate_s is not None:
            text = substitute(
                expr.replace("$__rate_interval", f"{math.ceil(rate_s)}s")
                .replace("${__rate_interval}", f"{math.ceil(rate_s)}s")
                .replace("$__interval", f"{math.ceil(rate_s)}s"),
                ctx.dashboard.variables,
                times,
            )
        out.append(text)
    return out


@check(
    "dashboard-series-exported",
    group="dashboard",
    needs=("dashboard", "exported"),
    symptom="a panel reads a series or label the target never exports, so it shows nothing",
)
def dashboard_series_exported(ctx: VerifyContext) -> CheckResult:
    ev = Evidence(("panel", "series", "problem", "query"))
    contract = {spec.name: set(spec.labels) for spec in ctx.contract.metrics}
    for panel in ctx.dashboard.panels:
        for query in panel_queries(ctx, panel):
            left = unresolved(query)
            if left:
                ev.add(panel.title, "-", f"unknown variables {', '.join(left)}", query)
                continue
            try:
                refs = extract(query)
            except PromQLError as err:
                ev.add(panel.title, "-", f"unreadable query: {err}", query)
                continue
            for series, _jobs, why in missing_series(refs, ctx.exported):
                if (panel.title, series, why, query) not in ev.rows:
                    ev.add(panel.title, series, why, query)
            for series, label, used, _has in unknown_labels(refs, ctx.exported, contract):
                ev.add(panel.title, series, f"label {label} ({used}) not carried", query)
    if ev.rows:
        missing = sorted(
            {r[1] for r in ev.rows if r[1] not in ("-", "(grouping)")}
            | {f"label {r[2].split()[1]}" for r in ev.rows if r[1] == "(grouping)"}
        )
        return CheckResult.failed(
            f"{len(ev.rows)} panel references are not exported: {', '.join(missing)}",
            measured=ctx.exported.source,
            evidence=ev,
        )
    return CheckResult.passed(f"all {len(ctx.dashboard.panels)} panels read exported series and labels")


def _values(ctx: VerifyContext, query: str, at: float) -> list[float]:
    return [s.value for s in ctx.prom.instant(query, at) if not math.isnan(s.value)]


def _predicts_zero(ctx: VerifyContext, title: str) -> bool:
    for spec in ctx.expectations.panels:
        if spec.title != title:
            continue
        if spec.meaning == "error_ratio":
            return ledger_total(ctx.ledger, spec.ledger, spec.errors)[0] == 0
        if spec.meaning == "counter_rate":
            return ledger_total(ctx.ledger, spec.ledger, spec.select)[0] == 0
    return False


def _has_data_over(ctx: VerifyContext, query: str, start: float, end: float, step: float) -> bool:
    series = ctx.prom.range(query, start, end, step)
    return any(not math.isnan(v) for s in series for _t, v in s.points)


@check(
    "dashboard-panels-return-data",
    group="dashboard",
    needs=("dashboard", "prom", "window", "exported"),
    symptom="a panel returns no data during the load",
)
def dashboard_panels_return_data(ctx: VerifyContext) -> CheckResult:
    """Each query evaluated over the load window as Grafana would draw it (one point per scrape)."""
    scrape = _scrape_s(ctx)
    start = ctx.window.start
    end = min(time.time(), ctx.after_time + GrafanaTimes(scrape, scrape, 0).rate_interval_s)
    ev = Evidence(("panel", "query", "problem"))
    with_data = 0
    for panel in ctx.dashboard.panels:
        if not panel.exprs:
            ev.add(panel.title, "-", "the panel has no Prometheus query")
            continue
        for query in panel_queries(ctx, panel, range_s=end - start):
            if _has_data_over(ctx, query, start, end, scrape):
                with_data += 1
                continue
            refs = extract(query)
            names_ok = not missing_series(refs, ctx.exported)
            if names_ok and _predicts_zero(ctx, panel.title):
                with_data += 1  # nothing happened that it counts, and what it reads exists
                continue
            ev.add(panel.title, query, "no data over the load window")
    measured = f"range queries over [{start:.1f}, {end:.1f}] every {scrape:g}s"
    if ev.rows:
        return CheckResult.failed(f"{len(ev.rows)} panel queries return nothing", evidence=ev, measured=measured)
    return CheckResult.passed(f"{with_data} panel queries return data over the load window", measured=measured)


@check(
    "dashboard-panels-job-scoped",
    group="dashboard",
    needs=("dashboard", "prom", "window"),
    symptom="a panel mixes series from unrelated scrape jobs (e.g. every exporter's process metrics)",
)
def dashboard_panels_job_scoped(ctx: VerifyContext) -> CheckResult:
    at = ctx.window.plateau[1]
    ev = Evidence(("panel", "series", "jobs read", "query"))
    checked = 0
    for panel in ctx.dashboard.panels:
        for query in panel_queries(ctx, panel):
            for sel in extract(query).selectors:
                if not sel.name or sel.matcher("job") is not None:
                    continue
                checked += 1
                inner = ", ".join(f'{m.label}{m.op}"{m.value}"' for m in sel.matchers if m.label != "__name__")
                samples = ctx.prom.instant(f"count by (job) ({sel.name}{{{inner}}})", at)
                jobs = sorted(s.labels.get("job", "") for s in samples)
                if len(jobs) > 1:
                    ev.add(panel.title, sel.name, ", ".join(jobs), query)
    if ev.rows:
        return CheckResult.failed(
            f"{len(ev.rows)} panel selectors read series of several jobs without a job matcher",
            expected="each selector names its job when its series exist in more than one job",
            evidence=ev,
        )
    return CheckResult.passed(f"no panel selector mixes jobs ({checked} unscoped selectors read one job each)")


def _per_time(series: list, combine: str) -> dict[float, float]:
    """One value per timestamp over all series of a range result (sum, or max for ratios)."""
    out: dict[float, float] = {}
    for s in series:
        for t, v in s.points:
            if math.isnan(v):
                continue
            out[t] = v if t not in out else (out[t] + v if combine == "sum" else max(out[t], v))
    return out


def _unit_factor(panel: Panel) -> float:
    return 100.0 if panel.unit == "percent" else 1.0


def _compare_with_reference(
    ctx: VerifyContext, spec: PanelSpec, panel: Panel, start: float, end: float, scrape: float
) -> tuple[str, str] | None:
    """(what differs, where) when the panel's first query disagrees with the reference query
    at any step of the load window; None when they agree everywhere."""
    query = panel_queries(ctx, panel)[0]
    windows = [w for w in extract(query).windows if w[2] == "range"]
    window = f"{math.ceil(max(w[1] for w in windows))}s" if windows else "1m"
    reference = spec.reference.replace("$__rate_interval", window).replace("${__rate_interval}", window)
    combine = "sum" if spec.meaning in ("counter_rate", "gauge_peak") else "max"
    got = _per_time(ctx.prom.range(query, start, end, scrape), combine)
    want = _per_time(ctx.prom.range(reference, start, end, scrape), combine)
    factor = _unit_factor(panel)
    for t in sorted(set(got) | set(want)):
        if t not in got:
            return f"no value where the reference shows {want[t]:g}", f"t={t:.0f}: {query}"
        if t not in want:
            return f"shows {got[t]:g} where the reference has no value", f"t={t:.0f}: {query}"
        expected = want[t] * factor
        if abs(got[t] - expected) > 1e-6 * max(1.0, abs(expected)):
            return f"shows {got[t]:g}, reference {expected:g}", f"t={t:.0f}: {query} vs {reference}"
    return None


@check(
    "dashboard-panels-match-ledger",
    group="dashboard",
    needs=("dashboard", "prom", "window", "ledger", "expectations"),
    symptom="a panel whose meaning is known shows a value the ledger contradicts",
)
def dashboard_panels_match_ledger(ctx: VerifyContext) -> CheckResult:
    """Two links per known panel. (1) Over the whole load window, step by step, the panel shows
    exactly what the reference query for its meaning shows (expectations [[panel]] reference,
    with the panel's own window): a panel on the wrong series, labels, jobs or scale differs.
    (2) The reference agrees with the ledger: rate x the whole run counts no more than the
    ledger (+ edge extrapolation), and no less when no series was born during the run (rate()
    cannot see what a new series counted before its first scrape); gauges peak within what
    the ledger opened; an error share is zero exactly when the ledger saw no 5xx."""
    window, after = ctx.window, ctx.after_time
    scrape = _scrape_s(ctx)
    span = after - window.start + 1.5 * scrape  # include one scrape before the first event
    panels = {p.title: p for p in ctx.dashboard.panels}
    ev = Evidence(("panel", "meaning", "expected", "observed", "tolerance", "query / ledger"))
    compared = 0
    for spec in ctx.expectations.panels:
        panel = panels.get(spec.title)
        if panel is None or not panel.exprs:
            ev.add(spec.title, spec.meaning, "-", "-", "-", "no panel with this title in the dashboard")
            continue
        compared += 1
        if spec.reference:
            differs = _compare_with_reference(ctx, spec, panel, window.start, after, scrape)
            if differs:
                ev.add(spec.title, "same as reference", "reference", differs[0], "1e-6 relative", differs[1])
                continue
        if spec.meaning == "counter_rate" and spec.reference:
            total, rows = ledger_total(ctx.ledger, spec.ledger, spec.select)
            whole = spec.reference.replace("$__rate_interval", f"{math.ceil(span)}s")
            counted = sum(_values(ctx, whole, after)) * math.ceil(span)
            edge = total * 2.2 * scrape / span + 1
            born = _born_series(ctx, whole, window.start, after)
            if counted > total + edge or (born == 0 and counted < total - edge):
                bound = f"<= {total + edge:.1f}" if born else f"{total}±{edge:.1f}"
                ev.add(
                    spec.title,
                    "count over the run",
                    total,
                    round(counted, 2),
                    bound,
                    f"{born} series born in the run; " + " + ".join(rows[:6]),
                )
        elif spec.meaning == "error_ratio":
            errors, _ = ledger_total(ctx.ledger, spec.ledger, spec.errors)
            values = _values(ctx, panel_queries(ctx, panel, range_s=span, rate_s=span)[0], after)
            shown = max(values) if values else 0.0
            if (errors == 0) != (shown == 0):
                ev.add(
                    spec.title,
                    "5xx share",
                    "0" if errors == 0 else "> 0",
                    f"{shown:g}",
                    "exact zero",
                    f"ledger 5xx responses: {errors}",
                )
        elif spec.meaning == "gauge_peak":
            gauge = next((g for g in ctx.expectations.gauges if g.metric == spec.gauge), None)
            if gauge is None:
                ev.add(spec.title, spec.meaning, "-", "-", "-", f"no [[gauge]] {spec.gauge} in the expectations")
                continue
            ups = sum(u for u, _d, _r in predict_gauge(ctx.ledger, gauge).values())
            base_q = panel_queries(ctx, panel)[0]
            start_v = sum(_values(ctx, base_q, window.start))
            by_time = _per_time(ctx.prom.range(base_q, window.start, after, max(scrape / 2, 0.5)), "sum")
            peak = max(by_time.values()) if by_time else None
            if ups and (peak is None or not start_v + 1 <= peak <= start_v + ups):
                ev.add(
                    spec.title,
                    "peak during the load",
                    f"{start_v + 1:g}..{start_v + ups:g}",
                    "no data" if peak is None else f"{peak:g}",
                    "bounded by ups",
                    base_q,
                )
    if ev.rows:
        return CheckResult.failed(f"{len(ev.rows)} known panels disagree with the reference or the ledger", evidence=ev)
    return CheckResult.passed(
        f"{compared} known panels show their reference and agree with the ledger",
        tolerance="panel vs reference: 1e-6 relative at every step; counts: ±(2.2 x scrape / window) of the "
        "ledger + 1 (upper bound only when series were born during the run); gauges: start+1 .. start+ups",
    )


def _born_series(ctx: VerifyContext, query: str, start: float, after: float) -> int:
    """Series read by `query` that did not exist before the run: rate() cannot see the counts
    made before their first scrape, so each may hide that much of the run."""
    born = 0
    for sel in extract(query).selectors:
        if not sel.name:
            continue
        inner = ", ".join(f'{m.label}{m.op}"{m.value}"' for m in sel.matchers if m.label != "__name__")
        before = ctx.prom.scalar(f"count({sel.name}{{{inner}}})", start) or 0
        now = ctx.prom.scalar(f"count({sel.name}{{{inner}}})", after) or 0
        born += max(0, int(now - before))
    return born
