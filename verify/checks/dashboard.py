"""Dashboard checks: every panel's query reads exported series, returns data, stays in its job,
and the panels whose meaning is known show what the ledger says happened.

    >>> REGISTRY["dashboard-panels-return-data"].run(ctx).summary
    '9 panel queries return data over the load window; 2 show nothing because the ledger has nothing
     they count: Error Rate (no 5xx of 37 responses), Rate Limit Hits (no rate-limit rejection)'

Panels are evaluated the way Grafana would send them ($__rate_interval, $__interval,
$__range and dashboard variables substituted; see verify/grafana.py) over the load window.
A query that shows nothing fails, unless the ledger explains it (nothing_counted): the
panel's known meaning counts something the complete ledger recorded none of (no 5xx, no
rejection) and what the query reads is exported; such a query is named as showing nothing,
never counted among those that return data.

A known panel must show, at every step of the load window, exactly what the
reference query of its meaning shows (verify/expectations/*.toml), and that reference must
agree with the ledger: with its window set to the whole run, rate x window is the run's
increase up to Prometheus' extrapolation at the two edges (at most 1.1 scrape intervals of
traffic each) -- except that rate() never sees what a series born during the run counted
before its first scrape, so with born series only the upper bound holds; a 5xx share lies
within the bounds those same edges (and what born series counted before their first
scrape) put around the ledger's share (verify/panel_ledger.error_ratio_bounds). That check's
evidence is every panel beside the harness's measurement (verify/panel_ledger.py), passing
or not, which the reports show as their dashboard table.

With a Grafana (compose stack, or --grafana-url), dashboard-grafana-matches-prometheus asks
Grafana for the dashboard it serves and for each panel query over the load window
(verify/grafana_api.py), and holds the answer against Prometheus' own.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

from codesync_load.errors import HarnessError
from codesync_load.ledger import KINDS
from codesync_load.promql import PromQLError, extract
from verify.assets import Dashboard, load_dashboard
from verify.checks.base import CheckError, CheckResult, Evidence, check
from verify.checks.static import missing_series, unknown_labels
from verify.expectations import ledger_total
from verify.grafana import GrafanaTimes, substitute, unresolved
from verify.grafana_api import GrafanaNotFound, GrafanaQueryError, compare_series, dashboard_uid, grafana_of
from verify.panel_ledger import COLUMNS, TOLERANCE, Span, panel_rows

if TYPE_CHECKING:
    from verify.assets import Panel
    from verify.context import VerifyContext
    from verify.prom import Series


def _scrape_s(ctx: VerifyContext) -> float:
    """The target's scrape interval as the Prometheus being read runs it (its own config, else
    --prometheus-config). Unknown is a named error: a guessed interval would change every
    window, step and tolerance the dashboard checks judge with."""
    intervals = ctx.live_scrape_intervals
    codesync = [v for k, v in intervals.items() if k.startswith("codesync")]
    if not (codesync or intervals):
        raise CheckError(
            f"the scrape interval is unknown: Prometheus {ctx.describe('prom')} does not serve its config and "
            "no --prometheus-config names the jobs; pass --prometheus-config"
        )
    return max(codesync or list(intervals.values()))


def panel_queries(
    ctx: VerifyContext,
    panel: Panel,
    range_s: float | None = None,
    rate_s: float | None = None,
    variables: dict[str, str] | None = None,
) -> list[str]:
    """The panel's queries as Grafana sends them to Prometheus (variables substituted; see
    verify/grafana.py); with `rate_s`, every window set to that many seconds instead.
    `variables` default to the dashboard file's."""
    scrape = _scrape_s(ctx)
    times = GrafanaTimes(interval_s=scrape, scrape_s=scrape, range_s=range_s or 3600.0)
    variables = ctx.dashboard.variables if variables is None else variables
    out = []
    for expr in panel.exprs:
        if rate_s is not None:
            window = f"{math.ceil(rate_s)}s"
            for name in ("${__rate_interval}", "$__rate_interval", "$__interval"):
                expr = expr.replace(name, window)
        out.append(substitute(expr, variables, times))
    return out


@check(
    "dashboard-series-exported",
    group="dashboard",
    needs=("dashboard", "exported"),
    symptom="a panel reads a series or label the target never exports, so it shows nothing",
)
def dashboard_series_exported(ctx: VerifyContext) -> CheckResult:
    if not ctx.dashboard.panels:
        return CheckResult.nothing_to_judge(f"the dashboard {ctx.describe('dashboard')} has no panel")
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


# What a panel counts, in the words of its no-data reason ("no 5xx", "no rate-limit rejection").
NOUNS = {"http": "response", "rate_limited": "rate-limit rejection", "error": "error", "failure": "failure"}


def nothing_counted(ctx: VerifyContext, title: str, index: int) -> str | None:
    """Why query `index` of the panel `title` rightly shows nothing: the ledger's own count of
    what the panel's known meaning counts is zero ("no 5xx of 37 responses"); None when the
    ledger cannot say so.

    Only a judgment of the ledger: the panel's meaning must be known (an [[panel]] entry of the
    expectations, error_ratio or counter_rate over a ledger kind), only its first query carries
    that meaning (as in the panel table), and the ledger must be complete and hold the run's
    traffic: an incomplete or empty ledger's zero means nothing was recorded, not that nothing
    happened.
    """
    if index != 0:
        return None
    spec = next((p for p in ctx.expectations.panels if p.title == title), None)
    if spec is None or spec.meaning not in ("error_ratio", "counter_rate") or spec.ledger not in KINDS:
        return None
    if not ctx.ledger_doc.get("complete") or ctx.ledger.is_empty():
        return None
    if spec.meaning == "error_ratio":
        errors = ledger_total(ctx.ledger, spec.ledger, spec.errors)[0]
        total = ledger_total(ctx.ledger, spec.ledger, spec.select)[0]
        return None if errors else f"no 5xx of {total} {NOUNS.get(spec.ledger, spec.ledger)}s"
    if ledger_total(ctx.ledger, spec.ledger, spec.select)[0]:
        return None
    return f"no {NOUNS.get(spec.ledger, spec.ledger + ' entry')}"


def _drawn_until(ctx: VerifyContext, until: float) -> float:
    """The end of the panels' range: `until` (a rate interval past the run's last scrape), once
    Prometheus has scraped every target job past it; now, if it does not within a few scrapes.

    Why wait: a counter the run's last requests gave birth to (the one rate-limit rejection at
    the end of a run) has its first sample in the scrape after the run, and rate() a point only
    from its second. Verified the moment the run ends, as a gate does, the panel would read as
    empty: a false alarm on a dashboard that is right. Verified later, there is nothing to wait for."""
    scrape = _scrape_s(ctx)
    if time.time() >= until + scrape:
        return until
    try:
        ctx.wait_scraped_since(until, max(0.0, until - time.time()) + 3 * scrape + 1.0)
    except HarnessError:  # a job that stopped being scraped: judge what there is
        return min(time.time(), until)
    return until


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
    end = _drawn_until(ctx, ctx.after_time + GrafanaTimes(scrape, scrape, 0).rate_interval_s)
    ev = Evidence(("panel", "query", "over the load window"))
    with_data = 0
    empty: list[str] = []  # titles of queries that show nothing the ledger does not explain
    quiet: list[tuple[str, str]] = []  # (title, why) of queries that show nothing because nothing happened
    for panel in ctx.dashboard.panels:
        if not panel.exprs:
            ev.add(panel.title, "-", "the panel has no Prometheus query")
            empty.append(panel.title)
            continue
        for i, query in enumerate(panel_queries(ctx, panel, range_s=end - start)):
            if _has_data_over(ctx, query, start, end, scrape):
                with_data += 1
                continue
            # Not a failure when nothing it counts happened (the ledger says so) and what it reads exists.
            why = None if missing_series(extract(query), ctx.exported) else nothing_counted(ctx, panel.title, i)
            if why:
                quiet.append((panel.title, why))
                ev.add(panel.title, query, f"no data, as the ledger predicts: {why}")
            else:
                empty.append(panel.title)
                ev.add(panel.title, query, "no data")
    measured = f"range queries over [{start:.1f}, {end:.1f}] every {scrape:g}s"
    if not (with_data or empty or quiet):
        return CheckResult.nothing_to_judge("the dashboard has no panel query", measured=measured)
    explained = ""
    if quiet:
        shows, count = ("shows", "it counts") if len(quiet) == 1 else ("show", "they count")
        explained = f"; {len(quiet)} {shows} nothing because the ledger has nothing {count}: " + ", ".join(
            f"{title} ({why})" for title, why in quiet
        )
    if empty:
        return CheckResult.failed(
            f"{len(empty)} panel queries return nothing over the load window: {', '.join(dict.fromkeys(empty))}"
            + explained,
            evidence=ev,
            measured=measured,
        )
    return CheckResult.passed(
        f"{with_data} panel queries return data over the load window{explained}", evidence=ev, measured=measured
    )


@check(
    "dashboard-panels-job-scoped",
    group="dashboard",
    needs=("dashboard", "prom", "window"),
    symptom="a panel mixes series from unrelated scrape jobs (e.g. every exporter's process metrics)",
)
def dashboard_panels_job_scoped(ctx: VerifyContext) -> CheckResult:
    """Each unscoped selector's jobs over the whole load window (every scrape), not one instant:
    a job whose series exist only for part of the run (an exporter that came up late, a series
    born mid-run) is mixed in whenever it is there."""
    start, end = ctx.window.start, ctx.after_time
    step = _scrape_s(ctx)
    ev = Evidence(("panel", "series", "jobs read", "query"))
    checked = selectors = 0
    for panel in ctx.dashboard.panels:
        for query in panel_queries(ctx, panel):
            for sel in extract(query).selectors:
                if not sel.name:
                    continue
                selectors += 1
                if sel.matcher("job") is not None:
                    continue
                checked += 1
                series = ctx.prom.range(f"count by (job) ({sel.instant})", start, end, step)
                jobs = sorted({s.labels.get("job", "") for s in series if s.points})
                if len(jobs) > 1:
                    ev.add(panel.title, sel.name, ", ".join(jobs), query)
    if not selectors:
        return CheckResult.nothing_to_judge("the dashboard's panels read no series")
    if ev.rows:
        return CheckResult.failed(
            f"{len(ev.rows)} panel selectors read series of several jobs without a job matcher",
            expected="each selector names its job when its series exist in more than one job over the load window",
            measured=f"count by (job) every {step:g}s over [{start:.1f}, {end:.1f}]",
            evidence=ev,
        )
    return CheckResult.passed(
        f"no panel selector mixes jobs over the load window ({checked} unscoped selectors read one job each)"
    )


@check(
    "dashboard-panels-match-ledger",
    group="dashboard",
    needs=("dashboard", "prom", "window", "ledger", "expectations"),
    symptom="a panel whose meaning is known shows a value the ledger contradicts",
)
def dashboard_panels_match_ledger(ctx: VerifyContext) -> CheckResult:
    """Every panel beside the harness's measurement (verify/panel_ledger.py), pass or fail: the
    evidence is the whole table, so reports show it for passing runs too. A known panel must
    show its reference query's value at every step of the load window, and the reference
    must agree with the ledger over the whole run; the check fails when a row says "no"."""
    span = Span(ctx.window.start, ctx.after_time, _scrape_s(ctx))
    rows = panel_rows(ctx, panel_queries, span)
    evidence = Evidence(COLUMNS, [row.cells() for row in rows])
    known = [r for r in rows if r.meaning != "-"]
    bad = [r for r in rows if r.agrees == "no"]
    measured = f"{len(rows)} panel queries over [{span.start:.1f}, {span.after:.1f}] every {span.scrape:g}s"
    if bad:
        return CheckResult.failed(
            f"{len(bad)} known panels disagree with the reference or the ledger: "
            + ", ".join(sorted({r.panel for r in bad})),
            measured=measured,
            tolerance=TOLERANCE,
            evidence=evidence,
        )
    if not known:
        return CheckResult.nothing_to_judge(
            f"no panel of the dashboard has a known meaning (expectations {ctx.describe('expectations')})",
            measured=measured,
            evidence=evidence,
        )
    return CheckResult.passed(
        f"{len(known)} known panels show their reference and agree with the ledger; "
        f"{len(rows) - len(known)} other panel queries listed",
        measured=measured,
        tolerance=TOLERANCE,
        evidence=evidence,
    )


@check(
    "dashboard-grafana-matches-prometheus",
    group="dashboard",
    needs=("dashboard", "prom", "window"),
    symptom="Grafana draws a panel other than Prometheus answers its query (or cannot draw it)",
)
def dashboard_grafana_matches_prometheus(ctx: VerifyContext) -> CheckResult:
    """The dashboard Grafana serves (by the file's uid), each panel query evaluated through
    Grafana's /api/ds/query over the load window, held against the same query sent to
    Prometheus directly over the same step-aligned range: same series, equal values. The
    queries go to Grafana with variables already substituted as the other dashboard checks
    substitute them, so both sides evaluate the same PromQL text."""
    api = grafana_of(ctx)  # skipped without a Grafana
    uid = dashboard_uid(ctx.options.dashboard)
    try:
        model = api.dashboard(uid)
    except GrafanaNotFound as err:
        return CheckResult.failed(f"{err}; is monitoring/grafana/provisioning mounted into Grafana?")
    served = _served_dashboard(ctx, model)
    scrape = _scrape_s(ctx)
    start, end = ctx.window.start, ctx.after_time
    datasource = api.prometheus_uid(model)
    ev = Evidence(("panel", "query", "Grafana series", "points compared", "agrees", "problem"))
    for title in sorted({p.title for p in ctx.dashboard.panels} - {p.title for p in served.panels}):
        ev.add(title, "-", "-", 0, "no", f"panel of {ctx.dashboard.source.name} not in Grafana's dashboard {uid}")
    answers: list[tuple[str, str, list[Series] | GrafanaQueryError]] = []
    for panel in served.panels:
        for query in panel_queries(ctx, panel, range_s=end - start, variables=served.variables):
            try:
                answers.append((panel.title, query, api.query_range(query, datasource, start, end, scrape)))
            except GrafanaQueryError as err:
                answers.append((panel.title, query, err))
    # One step for every panel (same range, same datasource): read it off all the answers,
    # since a panel with no data shows none.
    step = _step_of([s for *_x, shown in answers if isinstance(shown, list) for s in shown], scrape)
    for title, query, shown in answers:
        if isinstance(shown, GrafanaQueryError):
            ev.add(title, query, "-", 0, "no", f"Grafana error: {shown}")
            continue
        direct = ctx.prom.range(query, step * math.floor(start / step), step * math.floor(end / step), step)
        problem = compare_series(shown, direct)
        ev.add(title, query, len(shown), sum(len(s.points) for s in shown), "no" if problem else "yes", problem or "")
    bad = [r for r in ev.rows if r[4] == "no"]
    measured = f"{len(ev.rows)} panel queries through {api.url}/api/ds/query (datasource {datasource})"
    tolerance = "same series; values equal within 1e-9 relative at every common step; an end point may differ"
    if bad:
        return CheckResult.failed(
            f"{len(bad)} panel queries differ between Grafana and Prometheus: "
            + ", ".join(sorted({r[0] for r in bad})),
            measured=measured,
            tolerance=tolerance,
            evidence=ev,
        )
    return CheckResult.passed(
        f"Grafana shows all {len(ev.rows)} panel queries as Prometheus answers them",
        measured=measured,
        tolerance=tolerance,
        evidence=ev,
    )


def _served_dashboard(ctx: VerifyContext, model: dict) -> Dashboard:
    """Grafana's model read like the dashboard file (kept under RUN/verify/ as evidence)."""
    out = ctx.options.run_dir / "verify" / "grafana-dashboard.json" if ctx.options.run_dir else None
    if out is None:
        import tempfile

        out = Path(tempfile.mkdtemp(prefix="grafana-")) / "grafana-dashboard.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(model, indent=1))
    ctx.artifacts["grafana_dashboard"] = out
    return load_dashboard(out)


def _step_of(series: list[Series], requested: float) -> float:
    """Grafana's step as its answers show it (it may raise the requested one to the datasource's
    minimum interval), else the requested step."""
    gaps = [b[0] - a[0] for s in series for a, b in zip(s.points, s.points[1:], strict=False) if b[0] > a[0]]
    return round(min(gaps), 3) if gaps else requested
