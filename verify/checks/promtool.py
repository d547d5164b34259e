"""promtool-based checks: the project's own rule tests, and a rule test generated from the ledger.

    >>> REGISTRY["rules-promtool-tests"].run(ctx).verdict
    'pass'
    >>> REGISTRY["rules-promtool-generated"].run(ctx)   # writes <run>/verify/generated_rules_test.yml

rules-promtool-generated judges the alert rules against the run's ground truth, not against
themselves. Every series the alert rules read that the ledger predicts (verify/expectations:
the HTTP counters by method/route/status, the rate-limit counters, the latency histogram's
buckets from the client's samples) is written as an input series growing at the ledger's rate
over the load window, held past the largest range window plus the longest `for`, and promtool
evaluates the rules on it at the deployment's evaluation interval. The expected decision of
each alert comes from the ledger alone: its measure (error ratio, p95 at the histogram's
bucket resolution, rejections per second) against the threshold the expectations state for
that alert (the monitoring guide's). So a rule whose threshold, ratio, quantile, units or
windows are wrong fires where the ledger's numbers say it must not, or stays silent where they
say it must; an alert the expectations state nothing for, or whose series the ledger does not
predict (host memory, up), is listed as not judged against the ledger.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from codesync_load.errors import HarnessError
from codesync_load.gates import OPERATORS
from codesync_load.ledger import KINDS
from verify.assets import evaluation_interval
from verify.checks.base import CheckError, CheckResult, Evidence, MissingInput, check
from verify.expectations import AlertSpec, ledger_total, predict_counter

if TYPE_CHECKING:
    from verify.assets import Rule
    from verify.context import VerifyContext


def run_promtool(promtool: str, args: list[str], timeout: float = 300.0) -> tuple[int, str]:
    try:
        proc = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise HarnessError(f"{promtool!r} not found; apt-get install prometheus (it ships promtool)") from None
    except subprocess.TimeoutExpired:
        raise HarnessError(f"promtool {' '.join(args)} did not finish within {timeout:g} s") from None
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def _failure_lines(output: str, limit: int = 30) -> list[str]:
    lines = [line.rstrip() for line in output.splitlines() if line.strip()]
    return lines[:limit]


@check(
    "rules-promtool-tests",
    group="static",
    needs=("rules", "rule_tests"),
    symptom="the project's own promtool rule tests fail",
)
def rules_promtool_tests(ctx: VerifyContext) -> CheckResult:
    ev = Evidence(("test file", "promtool says"))
    for path in ctx.rule_tests:
        code, output = run_promtool(ctx.options.promtool, ["test", "rules", str(path)])
        if code != 0:
            for line in _failure_lines(output):
                ev.add(str(path), line)
    files = ", ".join(str(p) for p in ctx.rule_tests)
    if ev.rows:
        return CheckResult.failed("promtool test rules failed", measured=files, evidence=ev)
    return CheckResult.passed(f"promtool test rules passed for {len(ctx.rule_tests)} file(s)", measured=files)


def _evaluation_interval(ctx: VerifyContext) -> float:
    """The rule evaluation interval of --prometheus-config (the deployment's, which the rules are
    written for), else of the Prometheus being read (its running config); neither is a named
    error, not a guessed 15 s (the generated test's steps depend on it)."""
    if ctx.options.prometheus_config:
        return evaluation_interval(ctx.prometheus_config)
    running = ctx.prom.running_config()
    if running is not None:
        return evaluation_interval(running)
    raise CheckError(
        f"the evaluation interval is unknown: Prometheus {ctx.describe('prom')} does not serve its config "
        "and no --prometheus-config was given; pass --prometheus-config"
    )


def _series_text(labels: dict[str, str]) -> str:
    name = labels.get("__name__", "")
    inner = ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items()) if k != "__name__")
    return f"{name}{{{inner}}}"


def _fmt(value: float) -> str:
    text = f"{value:.9g}"
    return text if "e" not in text else f"{value:.12f}".rstrip("0").rstrip(".")


def fired_alerts(output: str) -> set[tuple[str, str]]:
    """(test name, alertname) of every alert promtool reports as firing where a test expected
    none (`exp_alerts: []`): how one promtool run tells which alerts fire on generated series."""
    return set(re.findall(r"name: (.+?),\s*\n\s*alertname: (\S+?),", output))


@dataclass
class LedgerDecision:
    """What the ledger says of one alert: its measure, the value, and whether it must fire
    (None: undecided, the threshold lies inside the histogram bucket that holds the quantile, or
    the ledger holds nothing to measure)."""

    alert: AlertSpec
    what: str
    value: float | None
    fires: bool | None
    why: str = ""


def _rate_key(labels: dict[str, str]) -> str:
    return _series_text(labels)


def _ledger_inputs(ctx: VerifyContext, names: set[str], interval: float, steps: int) -> dict[str, str]:
    """Input series (text -> promtool values) for the series `names` the ledger predicts: each
    counter growing at its ledger count / load duration, each latency bucket likewise."""
    duration = max(ctx.window.duration, 1e-9)
    out: dict[str, str] = {}
    for spec in ctx.expectations.counters:
        if spec.metric not in names:
            continue
        for key, (count, _rows) in predict_counter(ctx.ledger, spec).items():
            labels = {**dict(key), "job": spec.jobs[0], "instance": "ledger", "__name__": spec.metric}
            out[_rate_key(labels)] = f"0+{_fmt(count / duration * interval)}x{steps}"
    for alert in ctx.expectations.alerts:
        bucket_name = f"{alert.histogram}_bucket"
        if alert.measure != "latency_quantile" or bucket_name not in names:
            continue
        spec = next((m for m in ctx.contract.metrics if m.name == alert.histogram), None)
        hist = next((h for h in ctx.expectations.histograms if h.metric == alert.histogram), None)
        if spec is None or not spec.buckets:
            continue
        samples = _client_samples(ctx, alert)
        job = hist.jobs[0] if hist and hist.jobs else ctx.expectations.api_jobs[0]
        for le, count in _cumulative(samples, spec.buckets):
            labels = {"le": "+Inf" if math.isinf(le) else f"{le:g}", "job": job, "instance": "ledger"}
            out[_rate_key({**labels, "__name__": bucket_name})] = f"0+{_fmt(count / duration * interval)}x{steps}"
    return out


def _client_samples(ctx: VerifyContext, alert: AlertSpec) -> list[float]:
    name = next((n for n in alert.client_samples if ctx.ledger.samples(n)), None)
    return list(ctx.ledger.samples(name)) if name else []


def _cumulative(samples: list[float], buckets: tuple[float, ...]) -> list[tuple[float, int]]:
    bounds = [*sorted(buckets), math.inf]
    return [(le, sum(1 for v in samples if v <= le)) for le in bounds]


def ledger_decision(ctx: VerifyContext, alert: AlertSpec) -> LedgerDecision:
    """The alert's measure from the ledger and whether it crosses the stated threshold."""
    compare = OPERATORS[alert.op]
    if alert.measure == "error_ratio":
        rows = [
            (row, count)
            for labels, count in ctx.ledger.entries(alert.ledger)
            if alert.select.admits(row := dict(zip(KINDS[alert.ledger], labels, strict=True)))
        ]
        total = sum(count for _row, count in rows)
        errors = sum(count for row, count in rows if alert.errors.admits(row))
        if total == 0:
            return LedgerDecision(alert, "error ratio", None, None, "no request: no ratio to judge")
        value = errors / total
        return LedgerDecision(alert, f"error ratio ({errors} of {total})", value, compare(value, alert.threshold))
    if alert.measure == "counter_rate":
        count, _rows = ledger_total(ctx.ledger, alert.ledger, alert.select)
        value = count / max(ctx.window.duration, 1e-9)
        what = f"{alert.ledger} per second ({count} in {ctx.window.duration:.1f} s)"
        return LedgerDecision(alert, what, value, compare(value, alert.threshold))
    samples = _client_samples(ctx, alert)
    spec = next((m for m in ctx.contract.metrics if m.name == alert.histogram), None)
    what = f"p{alert.quantile * 100:g} latency (s)"
    if not samples or spec is None or not spec.buckets:
        return LedgerDecision(alert, what, None, None, "no latency sample: no quantile to judge")
    cumulative = _cumulative(samples, spec.buckets)
    rank = alert.quantile * len(samples)
    index = next(i for i, (_le, count) in enumerate(cumulative) if count >= rank)
    low = cumulative[index - 1][0] if index else 0.0
    high = cumulative[index][0]
    value = sorted(samples)[min(len(samples) - 1, max(0, math.ceil(rank) - 1))]
    if math.isinf(high):  # histogram_quantile answers the highest finite bound for the +Inf bucket
        return LedgerDecision(alert, what, value, compare(low, alert.threshold))
    if compare(low, alert.threshold) == compare(high, alert.threshold):  # either end of the bucket decides alike
        return LedgerDecision(alert, what, value, compare(high, alert.threshold))
    return LedgerDecision(alert, what, value, None, f"the threshold lies in the bucket ({low:g}, {high:g}]")


def generate_test(ctx: VerifyContext) -> tuple[dict[str, Any], list[LedgerDecision], list[tuple[str, str]]]:
    """The promtool test document, the ledger's decision of each alert it judges, and the
    (alert, why not judged) of the others."""
    rules = [r for r in ctx.rules if r.kind == "alert" and r.refs is not None]
    if not rules:
        raise MissingInput("nothing to judge: the rules define no alert")
    stated = {a.name: a for a in ctx.expectations.alerts}
    predicted = {s.metric for s in ctx.expectations.counters} | {
        f"{a.histogram}_bucket" for a in ctx.expectations.alerts if a.measure == "latency_quantile"
    }
    judged: list[tuple[Rule, AlertSpec]] = []
    not_judged: list[tuple[str, str]] = []
    for rule in rules:
        assert rule.refs is not None
        reads = {sel.name for sel in rule.refs.selectors if sel.name}
        if rule.name not in stated:
            not_judged.append((rule.name, f"{ctx.expectations.source.name} states no threshold for it"))
        elif not reads or not reads <= predicted:
            missing = ", ".join(sorted(reads - predicted)) or "no series"
            not_judged.append((rule.name, f"it reads {missing}, which the ledger does not predict"))
        else:
            judged.append((rule, stated[rule.name]))
    if not judged:
        raise MissingInput(
            "nothing to judge: no alert rule both has a threshold stated in the expectations and reads only "
            f"series the ledger predicts ({'; '.join(f'{n}: {w}' for n, w in not_judged)})"
        )
    interval = _evaluation_interval(ctx)
    longest_range = max((w[1] for r, _a in judged for w in r.refs.windows if r.refs), default=0.0)
    longest_for = max(r.for_s for r, _a in judged)
    eval_s = int(longest_range + longest_for + 4 * interval)
    steps = math.ceil(eval_s / interval) + 2
    names = {sel.name for r, _a in judged if r.refs for sel in r.refs.selectors if sel.name}
    inputs = _ledger_inputs(ctx, names, interval, steps)
    if not inputs:
        raise MissingInput(
            f"nothing to judge: the ledger holds none of the traffic the alerts read ({', '.join(sorted(names))})"
        )
    decisions = [ledger_decision(ctx, alert) for _rule, alert in judged]
    doc = {
        "rule_files": [str(Path(p).resolve()) for p in ctx.options.rules],
        "evaluation_interval": f"{int(interval)}s",
        "tests": [
            {
                "name": LEDGER_TEST,
                "interval": f"{int(interval)}s",
                "input_series": [{"series": k, "values": v} for k, v in sorted(inputs.items())],
                "alert_rule_test": [
                    {"alertname": rule.name, "eval_time": f"{eval_s}s", "exp_alerts": []} for rule, _a in judged
                ],
            }
        ],
    }
    return doc, decisions, not_judged


LEDGER_TEST = "the ledger's rates, sustained"


def _shown(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


@check(
    "rules-promtool-generated",
    group="alerts",
    needs=("rules", "ledger", "window", "expectations"),
    symptom="fed the run's ledger rates, an alert decides otherwise than the ledger's numbers say of its threshold",
)
def rules_promtool_generated(ctx: VerifyContext) -> CheckResult:
    doc, decisions, not_judged = generate_test(ctx)
    if ctx.options.run_dir is not None:
        out_dir = Path(ctx.options.run_dir) / "verify"
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "generated_rules_test.yml"
    else:
        path = Path(tempfile.mkdtemp(prefix="codesync-verify-")) / "generated_rules_test.yml"
    header = "# Generated by codesync-load verify from the run's ledger (see verify/checks/promtool.py).\n"
    path.write_text(header + yaml.safe_dump(doc, sort_keys=False, width=200))
    ctx.artifacts["generated_rules_test"] = path
    code, output = run_promtool(ctx.options.promtool, ["test", "rules", str(path)])
    fired = {alert for test, alert in fired_alerts(output) if test == LEDGER_TEST}
    if code != 0 and not fired:
        last = (output.strip().splitlines() or ["no output"])[-1]
        raise CheckError(f"promtool could not run the generated test {path}: {last}")
    ev = Evidence(("alert", "the ledger's measure", "value", "threshold", "ledger says", "rules at its rates", "agree"))
    wrong, undecided = [], []
    for d in decisions:
        name, rules_say = d.alert.name, d.alert.name in fired
        says = {True: "fires", False: "silent", None: "undecided"}[d.fires]
        agree = "-" if d.fires is None else d.fires == rules_say
        ev.add(
            name,
            d.what + (f": {d.why}" if d.why else ""),
            _shown(d.value),
            f"{d.alert.op} {d.alert.threshold:g}",
            says,
            "fires" if rules_say else "silent",
            agree,
        )
        if d.fires is None:
            undecided.append(name)
        elif d.fires != rules_say:
            wrong.append(
                f"{name} {'fires' if rules_say else 'stays silent'} at the ledger's {d.what} {_shown(d.value)} "
                f"(threshold {d.alert.op} {d.alert.threshold:g}: it should {'fire' if d.fires else 'stay silent'})"
            )
    for name, why in not_judged:
        ev.add(name, "-", "-", "-", "not judged against the ledger", why, "-")
    measured = f"{len(doc['tests'][0]['input_series'])} input series from the ledger; fired: " + (
        ", ".join(sorted(fired)) or "none"
    )
    expected = "each alert fires exactly where the ledger's measure crosses its stated threshold"
    if wrong:
        return CheckResult.failed("; ".join(wrong), measured=measured, expected=expected, evidence=ev)
    agreed = len(decisions) - len(undecided)
    if not agreed:
        raise MissingInput(f"nothing to judge: the ledger decides none of the alerts ({', '.join(undecided)})")
    extra = f"; {len(not_judged)} not judged against the ledger" if not_judged else ""
    return CheckResult.passed(
        f"{agreed} alerts fed the ledger's rates decide as its numbers say of their thresholds ({path}){extra}",
        measured=measured,
        expected=expected,
        evidence=ev,
    )
