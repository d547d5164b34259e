"""Reconciliation: the change the ledger predicts for each contract metric, against Prometheus.

    >>> r = REGISTRY["counters-match-ledger"].run(ctx)
    >>> print(r.evidence.render())
    metric                        labels                                       expected  observed  ledger entries
    codesync_http_requests_total  method=GET,route=/health,status_code=200     37        0         http{...}=37

Reading the numbers: a counter's change is (its value at the first scrape that began after
the run's last event) - (its value at the last scrape that had ENDED before the run's first
event), per label set and job: a scrape in flight at the start renders after the first
requests, and a later scrape after the end counts whatever ran next. That difference is
exact (no rate(), no extrapolation), so counters the harness alone moves
must agree EXACTLY: tolerance 0. Gauges are read at the same two moments (after - before
must equal ups - downs; a gauge that does not come back is a leak) and over the load
(the peak must rise by at least 1 and by no more than the ups: nothing concurrent can exceed
what was opened). Histogram quantiles are compared in buckets: a server-side duration is
part of the client-side one, so the client's quantile cannot fall in a lower bucket than the
server's, and loopback overhead is far below one bucket step, so it may be at most one higher.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Mapping
from typing import TYPE_CHECKING

from verify.checks.base import CheckResult, Evidence, MissingInput, check
from verify.checks.uptime import STRADDLE_S, probe_requests
from verify.expectations import LabelKey, gauge_timeline, ledger_total, predict_counter, predict_gauge
from verify.exported import TARGET_LABELS

if TYPE_CHECKING:
    from verify.context import VerifyContext


def job_matcher(jobs: tuple[str, ...]) -> str:
    return 'job=~"' + "|".join(jobs) + '"'


def fmt_key(key: LabelKey) -> str:
    return ",".join(f"{k}={v}" for k, v in key) or "(no labels)"


def read_by(
    ctx: VerifyContext,
    metric: str,
    jobs: tuple[str, ...],
    labels: tuple[str, ...],
    at: float | Mapping[str, float],
    agg: str = "sum",
) -> dict[LabelKey, float]:
    """`agg by (labels) (metric{job=~jobs})` at time `at`, keyed like the predictions.

    `at` per job (ctx.before_at, ctx.after_at: each job's own scrape) sums the jobs' reads; a
    job it does not name is read at the latest of its times."""
    if isinstance(at, Mapping):
        if not at:
            raise MissingInput("no scrape of the target's jobs to read at")
        out: dict[LabelKey, float] = {}
        fallback = max(at.values())
        for job in jobs:
            for key, value in read_by(ctx, metric, (job,), labels, at.get(job, fallback), agg).items():
                out[key] = out.get(key, 0.0) + value
        return out
    expr = (
        f"{agg} by ({', '.join(labels)}) ({metric}{{{job_matcher(jobs)}}})"
        if labels
        else f"{agg}({metric}{{{job_matcher(jobs)}}})"
    )
    out = {}
    for sample in ctx.prom.instant(expr, at):
        out[tuple(sorted((k, sample.labels.get(k, "")) for k in labels))] = sample.value
    return out


def peak_by(
    ctx: VerifyContext, metric: str, jobs: tuple[str, ...], labels: tuple[str, ...], start: float, end: float
) -> dict[LabelKey, float]:
    """The highest value of `sum by (labels)` over [start, end], from Prometheus' own samples."""
    span = max(1.0, end - start)
    inner = (
        f"sum by ({', '.join(labels)}) ({metric}{{{job_matcher(jobs)}}})"
        if labels
        else f"sum({metric}{{{job_matcher(jobs)}}})"
    )
    step_ms = max(500, int(min(ctx.live_scrape_intervals.values() or [1.0]) * 500))
    expr = f"max_over_time(({inner})[{math.ceil(span)}s:{step_ms}ms])"
    out = {}
    for sample in ctx.prom.instant(expr, end):
        out[tuple(sorted((k, sample.labels.get(k, "")) for k in labels))] = sample.value
    return out


def window_reads(ctx: VerifyContext) -> str:
    """Where a window's counter reads were taken, per job (the `measured` of exact checks)."""
    after, before = ctx.after_at, ctx.before_at
    reads = ", ".join(f"{job} {after[job]:.3f} - {before.get(job, ctx.window.start):.3f}" for job in sorted(after))
    return (
        "value at each job's first scrape that began after the last event - value at its last scrape "
        f"that had ended before the first event ({reads}; events {ctx.window.start:.3f}..{ctx.window.end:.3f})"
    )


def _num(value: float | None) -> str:
    if value is None:
        return "absent"
    return f"{value:g}"


@check(
    "metrics-present",
    group="reconcile",
    needs=("contract", "expectations", "exported"),
    symptom="a contract metric is absent from what Prometheus scraped",
)
def metrics_present(ctx: VerifyContext) -> CheckResult:
    """Absent = in none of its jobs. A labelled family appears only once an event created a label
    set (prom-client and the twin alike), so one that nothing in this run moves may be unseen:
    that is listed, not failed. Families without labels exist from start-up and must be there,
    and so must every family the expectations say this run moved."""
    moved = _predicted_to_move(ctx)
    ev = Evidence(("metric", "type", "jobs", "missing series", "why it must exist"))
    unseen = []
    for spec in ctx.contract.metrics:
        jobs = set(ctx.expectations.jobs_for_process(spec.process))
        names = [f"{spec.name}_{s}" for s in ("bucket", "count", "sum")] if spec.type == "histogram" else [spec.name]
        missing = [n for n in names if not ctx.exported.has(n, jobs)]
        if not missing:
            continue
        row = (spec.name, spec.type, ",".join(sorted(jobs)), ", ".join(missing))
        if not spec.labels:
            ev.add(*row, "no labels: exported from start-up")
        elif spec.name in moved:
            ev.add(*row, f"the ledger predicts {moved[spec.name]}")
        else:
            unseen.append(spec.name)
    total = len(ctx.contract.metrics)
    if not total:
        return CheckResult.nothing_to_judge(f"the contract {ctx.contract.name!r} lists no metric")
    note = f"; not seen, and nothing in this run moves them: {', '.join(unseen)}" if unseen else ""
    if ev.rows:
        absent = sorted({r[0] for r in ev.rows})
        return CheckResult.failed(
            f"{len(absent)} of {total} contract metrics are absent: {', '.join(absent)}{note}",
            measured=ctx.exported.source,
            expected=f"every metric of contract {ctx.contract.name!r} in its jobs",
            evidence=ev,
        )
    return CheckResult.passed(
        f"{total - len(unseen)} of {total} metrics of contract {ctx.contract.name!r} are exported{note}",
        measured=ctx.exported.source,
    )


def _predicted_to_move(ctx: VerifyContext) -> dict[str, str]:
    """Contract family -> why the ledger says it moved (only when a ledger is at hand)."""
    try:
        ledger = ctx.ledger
    except MissingInput:
        return {}
    out: dict[str, str] = {}
    for spec in ctx.expectations.counters:
        total = sum(n for n, _rows in predict_counter(ledger, spec).values())
        if total:
            base = spec.metric.removesuffix("_count")
            out[base] = out[spec.metric] = f"+{total}"
    for gauge in ctx.expectations.gauges:
        ups = sum(u for u, _d, _r in predict_gauge(ledger, gauge).values())
        if ups:
            out[gauge.metric] = f"{ups} ups"
    return out


@check(
    "metrics-labels-match-contract",
    group="reconcile",
    needs=("contract", "expectations", "exported"),
    symptom="a metric carries labels other than the contract's (labels drifted)",
)
def metrics_labels_match_contract(ctx: VerifyContext) -> CheckResult:
    ev = Evidence(("metric", "job", "exported labels", "contract labels", "extra", "missing"))
    checked = 0
    for spec in ctx.contract.metrics:
        jobs = set(ctx.expectations.jobs_for_process(spec.process))
        name = f"{spec.name}_bucket" if spec.type == "histogram" else spec.name
        for job in sorted(jobs):
            if not ctx.exported.has(name, {job}) or name in ctx.exported.declared_only:
                continue  # absent (metrics-present says so) or no sample yet (label names unknown)
            checked += 1
            got = ctx.exported.labels(name, {job}) - TARGET_LABELS - {"le"}
            want = set(spec.labels)
            if got != want:
                ev.add(
                    spec.name,
                    job,
                    ",".join(sorted(got)) or "-",
                    ",".join(sorted(want)) or "-",
                    ",".join(sorted(got - want)) or "-",
                    ",".join(sorted(want - got)) or "-",
                )
    if ev.rows:
        return CheckResult.failed(
            f"{len(ev.rows)} metrics carry labels other than the contract's",
            expected="exactly the contract's label names (plus job, instance; le on buckets)",
            evidence=ev,
        )
    if not checked:
        return CheckResult.nothing_to_judge("0 contract metrics with samples to read labels from")
    return CheckResult.passed(f"{checked} metric/job pairs carry exactly the contract's labels")


@check(
    "counters-match-ledger",
    group="reconcile",
    needs=("ledger", "window", "expectations", "prom"),
    symptom="a counter moved by other than what the ledger sent (stopped counting, or counts wrong)",
)
def counters_match_ledger(ctx: VerifyContext) -> CheckResult:
    ev = Evidence(("metric", "labels", "expected", "observed", "ledger entries"))
    by_metric: dict[str, list] = defaultdict(list)
    for spec in ctx.expectations.counters:
        by_metric[spec.metric].append(spec)
    matched = raced = 0
    for metric, specs in by_metric.items():
        labels = specs[0].key_labels
        jobs = tuple(dict.fromkeys(j for s in specs for j in s.jobs))
        predicted: dict[LabelKey, tuple[int, list[str]]] = {}
        for spec in specs:
            for key, (n, rows) in predict_counter(ctx.ledger, spec).items():
                total, all_rows = predicted.get(key, (0, []))
                predicted[key] = (total + n, all_rows + rows)
        either: dict[LabelKey, int] = {}  # probe tries that raced a boundary scrape: counted or not
        if specs[0].ledger == "http":  # the uptime probe's GET /health is the harness's traffic too
            read = [j for j in jobs if j in ctx.before_at and j in ctx.after_at]
            if read:
                inside, straddling = probe_requests(
                    ctx, min(ctx.before_at[j] for j in read), max(ctx.after_at[j] for j in read)
                )
                for key, (n, rows) in predict_counter(inside, specs[0]).items():
                    total, all_rows = predicted.get(key, (0, []))
                    predicted[key] = (total + n, all_rows + [f"uptime probe {row}" for row in rows])
                for key, (n, _rows) in predict_counter(straddling, specs[0]).items():
                    either[key] = n
                    total, all_rows = predicted.get(key, (0, []))
                    predicted[key] = (total, [*all_rows, f"0..{n} uptime probe tries at a boundary scrape"])
        before = read_by(ctx, metric, jobs, labels, ctx.before_at)
        after_values = read_by(ctx, metric, jobs, labels, ctx.after_at)
        for key in sorted(set(predicted) | set(after_values)):
            expected, rows = predicted.get(key, (0, ["(no ledger entry: expected unchanged)"]))
            observed = None if key not in after_values else after_values[key] - before.get(key, 0.0)
            extra = either.get(key, 0)
            if observed is not None and expected <= observed <= expected + extra:
                matched += 1
                raced += extra
                continue
            if observed is None and expected == 0:
                continue
            note = ""
            if observed is None:
                note = "series absent after the load; "
            elif observed == 0 and expected > 0:
                note = "never moved; "
            elif observed < 0:
                note = "went down (counter reset: target restarted?); "
            shown = f"{expected}..{expected + extra}" if extra else expected
            ev.add(metric, fmt_key(key), shown, _num(observed), note + " + ".join(rows))
    measured = window_reads(ctx)
    if ev.rows:
        metrics = sorted({r[0] for r in ev.rows})
        return CheckResult.failed(
            f"{len(ev.rows)} counter series disagree with the ledger: {', '.join(metrics)}",
            measured=measured,
            expected="exactly the ledger's count",
            tolerance="0 (exact)",
            evidence=ev,
        )
    if not matched:
        return CheckResult.nothing_to_judge("0 counter series predicted or observed", measured=measured)
    raced_note = (
        f" ({raced} uptime probe tr{'y' if raced == 1 else 'ies'} within {STRADDLE_S:g} s of a boundary scrape "
        "counted either way)"
        if raced
        else ""
    )
    return CheckResult.passed(
        f"{matched} counter series moved exactly as the ledger predicts{raced_note}",
        measured=measured,
        tolerance="0 (exact)",
    )


@check(
    "gauges-return-to-baseline",
    group="reconcile",
    needs=("ledger", "window", "expectations", "prom"),
    symptom="a gauge does not come back down after the load (a leak)",
)
def gauges_return_to_baseline(ctx: VerifyContext) -> CheckResult:
    ev = Evidence(("metric", "labels", "before", "expected after", "observed after", "ledger entries"))
    checked = 0
    for spec in ctx.expectations.gauges:
        predicted = predict_gauge(ctx.ledger, spec)
        before = read_by(ctx, spec.metric, spec.jobs, spec.key_labels, ctx.before_at)
        after_values = read_by(ctx, spec.metric, spec.jobs, spec.key_labels, ctx.after_at)
        # every series seen before or after: one that existed before the run and moved without a
        # ledger entry is as wrong as a new one (counters-match-ledger reads them all too)
        for key in sorted(set(predicted) | set(after_values) | set(before)):
            ups, downs, rows = predicted.get(key, (0, 0, ["(no ledger entry)"]))
            start = before.get(key, 0.0)
            expected = start + ups - downs
            observed = after_values.get(key)
            checked += 1
            if observed == expected or (observed is None and expected == 0):
                continue
            ev.add(spec.metric, fmt_key(key), _num(start), _num(expected), _num(observed), " + ".join(rows))
    if ev.rows:
        return CheckResult.failed(
            f"{len(ev.rows)} gauge series did not return to start + ups - downs after the load",
            expected="after = before + ups - downs from the ledger",
            tolerance="0 (exact)",
            evidence=ev,
        )
    if not checked:
        return CheckResult.nothing_to_judge("0 gauge series predicted or observed")
    return CheckResult.passed(f"{checked} gauge series ended where the ledger predicts", tolerance="0 (exact)")


# How far apart in time the ledger's stamp of an event and the target's move of its gauge may
# be: the client stamps an open when its connect call returned and a close when its close call
# did, the server moves the gauge inside that call, and the scrape reads the gauge a few ms
# after its own timestamp. One second is ~50x what these take on loopback, and a gevent load
# generator that stalls for a moment stamps late by that stall.
EVENT_SLACK_S = 1.0
PLATEAU_TOLERANCE = (
    f"each scrape during the load within the ledger's level over ±{EVENT_SLACK_S:g} s of it "
    "(the client stamps an event when its call returns; the server moves the gauge inside that call)"
)


def scraped_levels(
    ctx: VerifyContext, metric: str, jobs: tuple[str, ...], labels: tuple[str, ...], start: float, end: float
) -> dict[LabelKey, list[tuple[float, float]]]:
    """`sum by (labels)` at each scrape's own timestamp in (start, end], from Prometheus's stored
    samples (each series counts with its latest sample at that moment)."""
    lead = 5 * max(ctx.live_scrape_intervals.values() or [1.0])
    by_key: dict[LabelKey, list[list[tuple[float, float]]]] = defaultdict(list)
    for series in ctx.prom.scrapes(f"{metric}{{{job_matcher(jobs)}}}", start - lead, end):
        by_key[tuple(sorted((k, series.labels.get(k, "")) for k in labels))].append(series.points)
    out: dict[LabelKey, list[tuple[float, float]]] = {}
    for key, all_points in by_key.items():
        times = sorted({t for points in all_points for t, _v in points if start < t <= end})
        out[key] = [(t, sum(next((v for u, v in reversed(p) if u <= t), 0.0) for p in all_points)) for t in times]
    return out


def level_range(steps: list[tuple[float, int]], low: float, high: float) -> tuple[int, int]:
    """Lowest and highest level of a ledger timeline (level after each event) over [low, high]."""
    times = [at for at, _level in steps]
    first = bisect_right(times, low)
    seen = [steps[first - 1][1] if first else 0]
    seen += [level for at, level in steps[first:] if at <= high]
    return min(seen), max(seen)


@check(
    "gauges-reach-plateau",
    group="reconcile",
    needs=("ledger", "window", "expectations", "prom"),
    symptom="a gauge's level during the load is not what the ledger had open at that moment",
)
def gauges_reach_plateau(ctx: VerifyContext) -> CheckResult:
    """Every scrape of each gauge during the load, against the ledger's level at that moment.

    The ledger stamps every open and close (`events`), so its level at any moment is known;
    a gauge that counts only some connections, lags, or leaks during the load shows a scrape
    outside the ledger's level around it. A ledger without stamps (written before they existed)
    is held to the bound it allows: the peak rose by 1 .. ups."""
    window, after = ctx.window, ctx.after_time
    ev = Evidence(("metric", "labels", "scrape (s into the load)", "observed", "ledger level then", "ledger entries"))
    series = scrapes = 0
    bounded = []
    for spec in ctx.expectations.gauges:
        predicted = {k: v for k, v in predict_gauge(ctx.ledger, spec).items() if v[0]}
        if not predicted:
            continue
        before = read_by(ctx, spec.metric, spec.jobs, spec.key_labels, ctx.before_at)
        timeline = gauge_timeline(ctx.ledger, spec)
        if timeline is None:
            bounded.append(spec.metric)
            peaks = peak_by(ctx, spec.metric, spec.jobs, spec.key_labels, window.start, after)
            for key, (ups, _downs, rows) in sorted(predicted.items()):
                series += 1
                start, peak = before.get(key, 0.0), peaks.get(key)
                if peak is None or not start + 1 <= peak <= start + ups:
                    bound = f"peak {start + 1:g}..{start + ups:g} (no stamps in the ledger)"
                    ev.add(spec.metric, fmt_key(key), "peak", _num(peak), bound, " + ".join(rows))
            continue
        observed = scraped_levels(ctx, spec.metric, spec.jobs, spec.key_labels, window.start, after)
        for key, (_ups, _downs, rows) in sorted(predicted.items()):
            series += 1
            start, steps = before.get(key, 0.0), timeline.get(key, [])
            points = observed.get(key, [])
            if not points:
                ev.add(spec.metric, fmt_key(key), "-", "no scrape", "-", " + ".join(rows))
                continue
            wrong = []
            for at, value in points:
                low, high = level_range(steps, at - EVENT_SLACK_S, at + EVENT_SLACK_S)
                if not start + low <= value <= start + high:
                    wrong.append((at, value, start + low, start + high))
            scrapes += len(points)
            for at, value, low, high in wrong[:3]:
                level = f"{low:g}" if low == high else f"{low:g}..{high:g}"
                more = f" ({len(wrong)} of {len(points)} scrapes wrong)" if at == wrong[0][0] else ""
                when = f"{at - window.start:.1f}"
                ev.add(spec.metric, fmt_key(key), when, _num(value), level + more, " + ".join(rows))
    if not series:
        return CheckResult.nothing_to_judge("the ledger records nothing that raises a gauge")
    note = f"; bounded only (ledger without stamps): {', '.join(bounded)}" if bounded else ""
    if ev.rows:
        return CheckResult.failed(
            f"{len(ev.rows)} gauge scrapes during the load disagree with the ledger's level{note}",
            expected="at each scrape: start + what the ledger had open then",
            evidence=ev,
            tolerance=PLATEAU_TOLERANCE,
        )
    return CheckResult.passed(
        f"{series} gauge series matched the ledger's level at all {scrapes} scrapes during the load{note}",
        tolerance=PLATEAU_TOLERANCE,
    )


@check(
    "contract-metrics-reconciled",
    group="reconcile",
    needs=("contract", "expectations"),
    symptom="a contract metric is neither reconciled against the ledger nor excused with a reason",
)
def contract_metrics_reconciled(ctx: VerifyContext) -> CheckResult:
    """Each contract metric has an expectation, or the expectations file says why it cannot have one."""
    ev = Evidence(("metric", "type", "moved by (contract)"))
    kinds: dict[str, list[str]] = defaultdict(list)
    for spec in ctx.contract.metrics:
        kind = ctx.expectations.reconciles(spec.name)
        if kind:
            kinds[kind].append(spec.name)
        elif spec.name not in ctx.expectations.unreconciled:
            ev.add(spec.name, spec.type, spec.moved_by or "-")
    excused = [m.name for m in ctx.contract.metrics if m.name in ctx.expectations.unreconciled]
    if ev.rows:
        return CheckResult.failed(
            f"{len(ev.rows)} contract metrics have no expectation and no stated reason",
            expected=f"a [[counter]]/[[gauge]]/[[histogram]] or an [unreconciled] reason in {ctx.expectations.source}",
            evidence=ev,
        )
    counted = ", ".join(f"{len(names)} as {kind}s" for kind, names in sorted(kinds.items()))
    bounded = sorted(
        {m.name for m in ctx.contract.metrics for b in ctx.expectations.lower_bounds if b.metric.startswith(m.name)}
        & set(excused)
    )
    held = f"; still held to a lower bound (counters-reach-lower-bound): {', '.join(bounded)}" if bounded else ""
    return CheckResult.passed(
        f"{sum(map(len, kinds.values()))} contract metrics reconciled ({counted}); "
        f"{len(excused)} not, each with its reason: {', '.join(excused)}{held}"
    )


def bucket_index(bounds: list[float], value: float) -> int:
    """Index of the bucket (le bound) holding `value`; len(bounds) for +Inf."""
    for i, bound in enumerate(bounds):
        if value <= bound:
            return i
    return len(bounds)


def server_quantile_bucket(bucket_counts: list[tuple[float, float]], q: float) -> int | None:
    """Index of the bucket holding the q-quantile rank, from cumulative (le, count) pairs."""
    if not bucket_counts or bucket_counts[-1][1] <= 0:
        return None
    rank = q * bucket_counts[-1][1]
    for i, (_le, count) in enumerate(bucket_counts):
        if count >= rank:
            return i
    return len(bucket_counts) - 1


def client_quantile(samples: list[float], q: float) -> float:
    """Nearest-rank quantile (the same rule the bucket rank uses)."""
    ordered = sorted(samples)
    index = max(0, math.ceil(q * len(ordered)) - 1)
    return ordered[index]


# Quantiles at or below this are judged both ways; above it (the tail) only the impossible way.
TWO_SIDED_UP_TO_Q = 0.5
QUANTILE_TOLERANCE = (
    "client bucket never below the server's; at q <= 0.5 at most one bucket above it "
    "(the tail may be slower: client-side stalls)"
)


def quantile_problem(q: float, server: int, client: int) -> str | None:
    """What is wrong with a client quantile in bucket `client` against the server's in `server`.

    Why this shape: a request's client-side time is its server-side time plus network and
    client scheduling, so the client's q-quantile can never sit in a lower bucket than the
    server's (whatever the load): that direction is judged at every quantile. The other way
    the client may be slower by the bucket resolution (one bucket). Beyond that, only at the
    median and below: a load generator that shares its cores stalls now and then (the A/B
    gate benchmark measured a client p95 of 196 ms against a server bucket of 50 ms in one
    trial out of 45), and a stall lands in the tail; a server that under-reports its
    durations does so for every request, which moves the median too and is caught there.
    """
    if client < server:
        return "client faster than server: impossible if both measure the same requests"
    if client > server + 1 and q <= TWO_SIDED_UP_TO_Q:
        return "client more than one bucket slower than the server at the median or below"
    return None


def _label(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else f"{bound:g}"


@check(
    "latency-quantiles-consistent",
    group="reconcile",
    needs=("ledger", "window", "expectations", "prom"),
    symptom="server-side latency quantiles disagree with what the client measured",
)
def latency_quantiles_consistent(ctx: VerifyContext) -> CheckResult:
    ev = Evidence(("histogram", "q", "server bucket", "client value", "client bucket", "problem"))
    ok_rows = 0
    reasons = []
    for spec in ctx.expectations.histograms:
        name = next((n for n in spec.client_samples if ctx.ledger.samples(n)), None)
        before = read_by(ctx, f"{spec.metric}_bucket", spec.jobs, ("le",), ctx.before_at)
        after_values = read_by(ctx, f"{spec.metric}_bucket", spec.jobs, ("le",), ctx.after_at)
        deltas = []
        for key, value in after_values.items():
            le = float(dict(key)["le"])
            deltas.append((le, value - before.get(key, 0.0)))
        deltas.sort()
        observed = deltas[-1][1] if deltas else 0.0  # the +Inf bucket: every observation
        if name is None:
            if observed > 0:  # the server timed requests the client's ledger has no latency of: the symptom
                ev.add(
                    spec.metric,
                    "-",
                    f"{observed:g} observations",
                    "no samples",
                    "-",
                    f"the ledger holds no client samples {list(spec.client_samples)} of what the server timed",
                )
            else:
                reasons.append(f"{spec.metric}: neither the server nor the client timed anything during the load")
            continue
        samples = ctx.ledger.samples(name)
        bounds = [le for le, _ in deltas]
        for q in spec.quantiles:
            server = server_quantile_bucket(deltas, q)
            if server is None:
                ev.add(spec.metric, q, "no observations", "-", "-", "the histogram did not move during the load")
                continue
            value = client_quantile(samples, q)
            client = bucket_index(bounds, value)
            problem = quantile_problem(q, server, client)
            if problem:
                ev.add(
                    spec.metric,
                    q,
                    f"le={_label(bounds[server])}",
                    f"{value:.4f}s",
                    f"le={_label(bounds[min(client, len(bounds) - 1)])}",
                    problem,
                )
            else:
                ok_rows += 1
    if ev.rows:
        return CheckResult.failed(
            f"{len(ev.rows)} quantiles disagree between server buckets and client samples",
            tolerance=QUANTILE_TOLERANCE,
            evidence=ev,
        )
    if not ok_rows:
        return CheckResult.nothing_to_judge("; ".join(reasons) or "the expectations name no histogram")
    return CheckResult.passed(
        f"{ok_rows} quantiles consistent within the bucket resolution", tolerance=QUANTILE_TOLERANCE
    )


@check(
    "counters-reach-lower-bound",
    group="reconcile",
    needs=("ledger", "window", "expectations", "prom"),
    symptom="a counter tied to work the load certainly caused rose by less than that work (stopped counting)",
)
def counters_reach_lower_bound(ctx: VerifyContext) -> CheckResult:
    """Each `[[lower_bound]]` of the expectations: the counter's rise over the load window (summed
    over its label sets and jobs) is at least `per` x the ledger rows that certainly caused it.

    Why a bound: how many database queries a request costs is the server's own business, so no
    exact count can be predicted (the metric may be in [unreconciled]); but a state-changing
    request answered with success cost at least one, so a counter that rose by less has stopped
    counting, whatever else ran on the target (other traffic can only add)."""
    bounds = ctx.expectations.lower_bounds
    if not bounds:
        raise MissingInput(f"{ctx.expectations.source} states no [[lower_bound]]")
    ev = Evidence(("metric", "lower bound", "observed rise", "ok", "ledger entries"))
    bad = []
    for spec in bounds:
        total, rows = ledger_total(ctx.ledger, spec.ledger, spec.select)
        need = total * spec.per
        before = read_by(ctx, spec.metric, spec.jobs, (), ctx.before_at).get((), 0.0)
        at_end = read_by(ctx, spec.metric, spec.jobs, (), ctx.after_at).get(())
        observed = None if at_end is None else at_end - before
        ok = observed is not None and observed >= need
        shown = " + ".join(rows[:6]) + (f" + {len(rows) - 6} more" if len(rows) > 6 else "") or "(none)"
        ev.add(spec.metric, f">= {need} ({spec.per} x {total})", _num(observed), ok, shown)
        if not ok:
            bad.append(f"{spec.metric} rose by {_num(observed)}, less than the {need} the load certainly caused")
    measured = window_reads(ctx)
    if bad:
        return CheckResult.failed("; ".join(bad), measured=measured, expected="at least the lower bound", evidence=ev)
    return CheckResult.passed(
        f"{len(bounds)} counters rose by at least the work the load certainly caused",
        measured=measured,
        expected="at least the lower bound",
        evidence=ev,
    )
