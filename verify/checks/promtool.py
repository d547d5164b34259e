"""promtool-based checks: the project's own rule tests, and a rule test generated from the run.

    >>> REGISTRY["rules-promtool-tests"].run(ctx).verdict
    'pass'
    >>> REGISTRY["rules-promtool-generated"].run(ctx)   # writes <run>/verify/generated_rules_test.yml

The generated test replays the run's measured state for longer than any rule needs: every
series the alert rules read is written as an input series holding the value (gauges) or the
per-second rate (counters) Prometheus measured over the plateau, sustained past the largest
range window plus the longest `for`. The expected alerts are the ones whose condition
Prometheus itself finds true at the end of the plateau at those same rates (the rule's
expression with its range windows set to the plateau). So the test asks: held at this run's
rates, do exactly these alerts fire after their `for`, with these labels? It catches rules
whose windows or `for` cannot work at the configured intervals, and it documents, in a file a
reviewer can rerun with promtool, which alerts this load would raise if it lasted.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from codesync_load.errors import HarnessError
from verify.assets import evaluation_interval
from verify.checks.base import CheckError, CheckResult, Evidence, MissingInput, check

if TYPE_CHECKING:
    from verify.context import VerifyContext

_RANGE_RE = re.compile(r"\[\s*(?:\d+(?:ms|[smhdwy]))+\s*\]")
# Series Prometheus itself writes for every scrape (no target declares them): all levels.
SCRAPE_SERIES = {
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
}


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


def _is_counter(name: str, ctx: VerifyContext) -> bool:
    """Whether the series counts (its input is a rate) or is a level: as the contract declares it,
    else as the target declares it (`# TYPE`, Prometheus' target metadata). Neither knowing is a
    named error: guessed from a suffix or from the functions a rule applies, a gauge read with
    rate() or a counter named without _total would be replayed wrongly."""
    base = re.sub(r"_(bucket|count|sum)$", "", name)
    spec = next((s for s in ctx.contract.metrics if s.name in (name, base)), None)
    if spec is not None:
        return spec.type in ("counter", "histogram", "summary")
    if name in SCRAPE_SERIES:
        return False
    declared = {str(m.get("metric")): str(m.get("type")) for m in ctx.prom.target_metadata()}
    kind = declared.get(name) or (declared.get(base) if base != name else None)
    if kind is None:
        raise CheckError(
            f"cannot tell whether {name} is a counter: neither the contract ({ctx.contract.name}) nor the "
            f"target's metadata at {ctx.describe('prom')} declares it; add it to the contract"
        )
    return kind in ("counter", "histogram", "summary")


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


def generate_test(ctx: VerifyContext) -> tuple[dict[str, Any], list[tuple[str, str, int]]]:
    """The promtool test document and (alert, expected firing label sets, input series) rows."""
    rules = [r for r in ctx.rules if r.kind == "alert"]
    if not rules:
        raise MissingInput("nothing to judge: the rules define no alert")
    plateau_start, plateau_end = ctx.window.plateau
    rate_window = max(2.0, plateau_end - plateau_start)
    interval = _evaluation_interval(ctx)
    longest_range = max((w[1] for r in rules for w in (r.refs.windows if r.refs else [])), default=0.0)
    longest_for = max((r.for_s for r in rules), default=0.0)
    eval_s = longest_range + longest_for + 3 * interval
    steps = math.ceil(eval_s / interval) + 2

    inputs: dict[str, str] = {}
    for rule in rules:
        assert rule.refs is not None
        for sel in rule.refs.selectors:
            if not sel.name:
                continue
            instant = sel.instant
            if not ctx.prom.instant(f"count({instant})", plateau_end):
                continue  # nothing of it exists here: no input series, whatever its kind
            counter = _is_counter(sel.name, ctx)
            if counter:
                samples = ctx.prom.instant(f"rate({instant}[{math.floor(rate_window)}s])", plateau_end)
                now = ctx.prom.instant(instant, plateau_end)
                current = {json.dumps(sorted(s.labels.items())): s.value for s in now}
                for s in samples:
                    labels = {**s.labels, "__name__": sel.name}
                    if math.isnan(s.value):
                        continue
                    start = current.get(json.dumps(sorted(labels.items())), 0.0)
                    inputs[_series_text(labels)] = f"{_fmt(start)}+{_fmt(s.value * interval)}x{steps}"
            else:
                for s in ctx.prom.instant(instant, plateau_end):
                    if not math.isnan(s.value):
                        inputs[_series_text(s.labels)] = f"{_fmt(s.value)}x{steps}"
    tests_expr = []
    rows = []
    for rule in rules:
        # The oracle: the rule's condition at the run's measured rates, i.e. its expression with
        # every range window set to the plateau (the window the input rates were measured over).
        measured_expr = _RANGE_RE.sub(f"[{math.floor(rate_window)}s]", rule.expr)
        firing = ctx.prom.instant(measured_expr, plateau_end)
        expected = []
        for s in firing:
            labels = {k: v for k, v in s.labels.items() if k != "__name__"}
            labels.update(rule.labels)
            labels.update({"alertname": rule.name, "alertstate": "firing", "__name__": "ALERTS"})
            expected.append({"labels": _series_text(labels), "value": 1})
        tests_expr.append(
            {
                "expr": f'ALERTS{{alertname="{rule.name}", alertstate="firing"}}',
                "eval_time": f"{int(eval_s)}s",
                "exp_samples": expected,
            }
        )
        rows.append((rule.name, ", ".join(e["labels"] for e in expected) or "(silent)", len(inputs)))
    doc = {
        "rule_files": [str(Path(p).resolve()) for p in ctx.options.rules],
        "evaluation_interval": f"{int(interval)}s",
        "tests": [
            {
                "name": "the run's measured rates, sustained",
                "interval": f"{int(interval)}s",
                "input_series": [{"series": k, "values": v} for k, v in sorted(inputs.items())],
                "promql_expr_test": tests_expr,
            }
        ],
    }
    return doc, rows


@check(
    "rules-promtool-generated",
    group="alerts",
    needs=("rules", "prom", "window"),
    symptom="at the run's measured rates the rules would not fire as their conditions say",
)
def rules_promtool_generated(ctx: VerifyContext) -> CheckResult:
    doc, rows = generate_test(ctx)
    if ctx.options.run_dir is not None:
        out_dir = Path(ctx.options.run_dir) / "verify"
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "generated_rules_test.yml"
    else:
        path = Path(tempfile.mkdtemp(prefix="codesync-verify-")) / "generated_rules_test.yml"
    header = "# Generated by codesync-load verify from the run's measured rates (see verify/checks/promtool.py).\n"
    path.write_text(header + yaml.safe_dump(doc, sort_keys=False, width=200))
    ctx.artifacts["generated_rules_test"] = path
    code, output = run_promtool(ctx.options.promtool, ["test", "rules", str(path)])
    firing = sorted({r[0] for r in rows if r[1] != "(silent)"})
    measured = f"{len(doc['tests'][0]['input_series'])} input series; firing at measured rates: " + (
        ", ".join(firing) or "none"
    )
    if code != 0:
        ev = Evidence(("generated test", "promtool says"))
        for line in _failure_lines(output):
            ev.add(str(path), line)
        return CheckResult.failed(
            "the rules do not fire at the run's rates as their conditions say", measured=measured, evidence=ev
        )
    return CheckResult.passed(f"promtool agrees at the run's rates ({path})", measured=measured)
