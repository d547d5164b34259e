"""Static checks of the alert rules and Alertmanager routes against what the target exports.

    >>> result = REGISTRY["rules-series-exported"].run(ctx)
    >>> result.verdict, result.evidence.rows[0]
    ('fail', ('HighErrorRate', 'http_requests_total', 'codesync-backend', 'not exported by job codesync-backend'))

A rule on a series that never existed can never fire, and a matcher or `by()` on a label the
series does not carry silently selects nothing (or collapses everything): both are caught
here without waiting for an incident. Windows must span at least four scrapes, or rate()
sees fewer than the two samples it needs whenever one scrape is late. Every severity a rule
sets must be matched by a route of its own that delivers somewhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from codesync_load.promql import PromQLRefs, Selector
from verify.checks.base import CheckResult, Evidence, check
from verify.exported import TARGET_LABELS, ExportedSeries
from verify.routing import receiver_integrations, route_alert

if TYPE_CHECKING:
    from verify.context import VerifyContext

MIN_SCRAPES_PER_WINDOW = 4


def selector_jobs(selector: Selector, known_jobs: Iterable[str]) -> set[str] | None:
    """Jobs a selector's `job` matcher admits among `known_jobs`; None when it has no job matcher."""
    matcher = selector.matcher("job")
    if matcher is None:
        return None
    return {job for job in known_jobs if matcher.matches(job)}


def _histogram_base(name: str) -> str:
    return re.sub(r"_(bucket|count|sum)$", "", name)


def missing_series(refs: PromQLRefs, catalog: ExportedSeries) -> list[tuple[str, str, str]]:
    """(series, job scope, why) for every selector naming a series the catalog does not hold."""
    out = []
    known_jobs = catalog.jobs()
    for sel in refs.selectors:
        if not sel.name:
            continue
        job_matcher = sel.matcher("job")
        jobs = selector_jobs(sel, known_jobs)
        scope = job_matcher.value if job_matcher else "any job"
        if job_matcher is not None and not jobs:
            out.append((sel.name, scope, f'no scraped job matches job{job_matcher.op}"{job_matcher.value}"'))
        elif not catalog.has(sel.name, jobs):
            out.append((sel.name, scope, f"not exported by {'job ' + scope if jobs is not None else 'any job'}"))
    return out


def unknown_labels(refs: PromQLRefs, catalog: ExportedSeries, contract_labels: dict[str, set[str]]) -> list[tuple]:
    """(series, label, how used, labels it really has) for labels the series do not carry.

    A family the target declares without samples yet has unknown label names: the contract's
    are assumed for it (and nothing is judged when the contract does not know it either).
    """
    out = []
    known_jobs = catalog.jobs()
    available: set[str] = set(refs.created_labels) | TARGET_LABELS
    unknown_scope = False
    for sel in refs.selectors:
        if not sel.name:
            continue
        if not catalog.has(sel.name):
            unknown_scope = True  # a missing series is the other check's finding; its labels are unknowable
            continue
        jobs = selector_jobs(sel, known_jobs)
        if sel.name in catalog.declared_only:
            declared = contract_labels.get(sel.name, contract_labels.get(_histogram_base(sel.name)))
            if declared is None:
                unknown_scope = True
                continue
            labels = declared | TARGET_LABELS | ({"le"} if sel.name.endswith("_bucket") else set())
        else:
            labels = catalog.labels(sel.name, jobs) | TARGET_LABELS
        available |= labels
        for m in sel.matchers:
            if m.label != "__name__" and m.label not in labels:
                out.append((sel.name, m.label, f'matcher {m.label}{m.op}"{m.value}"', ",".join(sorted(labels))))
    if not unknown_scope:
        for label in sorted(refs.grouping_labels):
            if label not in available:
                out.append(("(grouping)", label, "by/without/on/ignoring", ",".join(sorted(available))))
    return out


def contract_label_map(ctx: VerifyContext) -> dict[str, set[str]]:
    """Metric -> the contract's label names. An unreadable contract is the verification's
    HarnessError (one line, exit 2), never an empty map that would judge labels against nothing."""
    return {spec.name: set(spec.labels) for spec in ctx.contract.metrics}


@check(
    "rules-series-exported",
    group="static",
    needs=("rules", "exported"),
    symptom="a rule reads a series the target never exports, so it can never fire",
)
def rules_series_exported(ctx: VerifyContext) -> CheckResult:
    ev = Evidence(("rule", "series", "job scope", "problem"))
    selectors = 0
    for rule in ctx.rules:
        assert rule.refs is not None
        selectors += len(rule.refs.selectors)
        for series, jobs, why in missing_series(rule.refs, ctx.exported):
            if (rule.name, series, jobs, why) not in ev.rows:
                ev.add(rule.name, series, jobs, why)
    missing = sorted({row[1] for row in ev.rows})
    measured = f"{selectors} selectors in {len(ctx.rules)} rules; exported: {ctx.exported.source}"
    if not selectors:
        return CheckResult.nothing_to_judge(f"{len(ctx.rules)} rules read no series", measured=measured)
    if ev.rows:
        return CheckResult.failed(
            f"{len(missing)} series used by rules are not exported: {', '.join(missing)}",
            measured=measured,
            expected="every series a rule reads is exported by the job it names",
            evidence=ev,
        )
    return CheckResult.passed("every series the rules read is exported", measured=measured)


@check(
    "rules-labels-exported",
    group="static",
    needs=("rules", "exported"),
    symptom="a rule matches or groups by a label the series do not carry (labels drifted)",
)
def rules_labels_exported(ctx: VerifyContext) -> CheckResult:
    ev = Evidence(("rule", "series", "label", "used as", "labels the series carry"))
    contract = contract_label_map(ctx)
    selectors = 0
    for rule in ctx.rules:
        assert rule.refs is not None
        selectors += len(rule.refs.selectors)
        for row in unknown_labels(rule.refs, ctx.exported, contract):
            ev.add(rule.name, *row)
    if not selectors:
        return CheckResult.nothing_to_judge(f"{len(ctx.rules)} rules read no series")
    if ev.rows:
        labels = sorted({f"{r[1]}.{r[2]}" for r in ev.rows})
        return CheckResult.failed(
            f"{len(ev.rows)} label uses name labels the series do not carry: {', '.join(labels)}",
            expected="every matcher and by()/on() label is a label of the series (contract labels + job, instance)",
            evidence=ev,
        )
    return CheckResult.passed(
        "every label the rules match or group by is carried by the series",
        measured=f"{selectors} selectors in {len(ctx.rules)} rules",
    )


def window_rows(name: str, refs: PromQLRefs, intervals: dict[str, float]) -> list[tuple]:
    """(name, window, jobs, interval, minimum) for each window shorter than 4 scrapes."""
    jobs: set[str] = set()
    unscoped = False
    for sel in refs.selectors:
        admitted = selector_jobs(sel, intervals)
        if admitted is None:
            unscoped = True
        else:
            jobs |= admitted
    if unscoped or not jobs:
        jobs = set(intervals)
    interval = max((intervals[j] for j in jobs), default=60.0)
    rows = []
    for text, seconds, kind in refs.windows:
        if kind == "step":
            continue
        if seconds < MIN_SCRAPES_PER_WINDOW * interval:
            rows.append((name, f"[{text}]", ",".join(sorted(jobs)), f"{interval:g}s", f"{4 * interval:g}s"))
    return rows


@check(
    "rules-windows-fit-scrape",
    group="static",
    needs=("rules", "scrape_intervals"),
    symptom="a rule's range window holds fewer than 4 scrapes, so rate() flaps or returns nothing",
)
def rules_windows_fit_scrape(ctx: VerifyContext) -> CheckResult:
    ev = Evidence(("rule", "window", "jobs read", "scrape interval", "minimum window"))
    count = 0
    for rule in ctx.rules:
        assert rule.refs is not None
        count += len(rule.refs.windows)
        for row in window_rows(rule.name, rule.refs, ctx.scrape_intervals):
            ev.add(*row)
    measured = f"{count} windows; scrape intervals " + ", ".join(f"{j}={s:g}s" for j, s in ctx.scrape_intervals.items())
    if not count:
        return CheckResult.nothing_to_judge(f"{len(ctx.rules)} rules hold no range window", measured=measured)
    if ev.rows:
        return CheckResult.failed(
            f"{len(ev.rows)} windows are shorter than {MIN_SCRAPES_PER_WINDOW} scrape intervals",
            measured=measured,
            expected=f"window >= {MIN_SCRAPES_PER_WINDOW} x the slowest scrape interval it reads",
            evidence=ev,
        )
    return CheckResult.passed(f"every window spans >= {MIN_SCRAPES_PER_WINDOW} scrapes", measured=measured)


@check(
    "alerts-severities-routed",
    group="static",
    needs=("rules", "alertmanager_config"),
    symptom="an alert's severity is matched by no route of its own, so it only reaches the default receiver",
)
def alerts_severities_routed(ctx: VerifyContext) -> CheckResult:
    config = ctx.alertmanager_config
    root = config.get("route") or {}
    integrations = receiver_integrations(config)
    ev = Evidence(("alert", "severity", "receivers reached", "problem"))
    ok_rows = []
    for rule in ctx.rules:
        if rule.kind != "alert":
            continue
        severity = rule.labels.get("severity")
        if not severity:
            ev.add(rule.name, "-", "-", "the rule sets no severity label")
            continue
        labels = {"alertname": rule.name, **rule.labels}
        reached = route_alert(root, labels)
        specific = [r for r in reached if any(m.startswith("severity") for m in r.by_matchers)]
        names = ", ".join(f"{r.receiver} ({r.path})" for r in reached)
        problems = []
        if not specific:
            problems.append(f"no route matches severity={severity}")
        for r in specific:
            if r.receiver not in integrations:
                problems.append(f"receiver {r.receiver} is not defined")
            elif not integrations[r.receiver]:
                problems.append(f"receiver {r.receiver} has no integration (*_configs)")
        if problems:
            ev.add(rule.name, severity, names, "; ".join(problems))
        else:
            ok_rows.append((rule.name, severity, names))
    if ev.rows:
        return CheckResult.failed(
            f"{len(ev.rows)} alerts are not routed by their severity",
            expected="each severity matched by a route whose receiver exists and has an integration",
            evidence=ev,
        )
    severities = sorted({row[1] for row in ok_rows})
    if not ok_rows:
        return CheckResult.nothing_to_judge(f"{len(ctx.rules)} rules define no alert")
    return CheckResult.passed(
        f"severities {', '.join(severities)} each reach a receiver of their own",
        measured=f"{len(ok_rows)} alerts",
    )
