"""Alert rules against what they say they do: ratios that stay ratios, thresholds as quoted.

    >>> REGISTRY["alerts-ratio-scale-invariant"].run(ctx).verdict     # promtool, no target needed
    'pass'
    >>> REGISTRY["alerts-thresholds-match-annotations"].run(ctx).summary
    '9 alerts quote no threshold other than their expression's'

Why: a rule can be syntactically right, read exported series and still not mean what its
name and annotations promise. "Error rate above 5 %" written as `rate(errors) > 5` fires on a
busy day with 0.1 % errors and stays silent on a quiet day with 50 %; an annotation saying 5 %
above an expression comparing with 0.1 misleads whoever is paged.

alerts-ratio-scale-invariant: every alert is evaluated by one `promtool test rules` run on
generated series at seven traffic scales (every application counter at 0.001 .. 1000 increments per
second); a rule whose name or annotations speak of a ratio or percentage (%, percent, ratio,
share, fraction, humanizePercentage) must decide the same at every scale and ten times it.
Traffic is what the application counts: counters of the contract; host and exporter series
(CPU seconds, memory, disk, up) keep their values, since they are not traffic. Rules that
speak of absolute rates (rejections/s) and change their decision with the traffic are listed
in the evidence, not failed: that is their stated intent.

alerts-thresholds-match-annotations: every number quoted as a threshold in a rule's summary
or description ("threshold 5%", "above 2s", "> 10/s") equals the expression's final
comparison's constant (percent / 100, ms / 1000).
"""

from __future__ import annotations

import itertools
import math
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from verify.checks.base import CheckResult, Evidence, MissingInput, check
from verify.checks.promtool import fired_alerts, run_promtool

if TYPE_CHECKING:
    from verify.assets import Rule
    from verify.context import VerifyContext

SCALES = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)  # increments per second of each traffic counter
INTERVAL_S = 15
RATIO_WORDS = re.compile(r"%|percent|ratio|\bshare\b|fraction", re.IGNORECASE)
_FINAL_COMPARISON = re.compile(r"(>=|<=|==|!=|>|<)\s*(-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)\s*$")
_QUOTED = re.compile(
    r"(?:threshold|above|over|below|under|exceeds?|more than|less than|greater than|>=|<=|>|<)\s*"
    r"(-?[0-9]+(?:\.[0-9]+)?)\s*(%|percent|ms\b|/s\b|s\b)?",
    re.IGNORECASE,
)


def speaks_of_ratio(rule: Rule) -> bool:
    """Whether the rule's name or annotations promise a ratio or percentage."""
    text = " ".join(rule.annotations.values())
    if "humanizePercentage" in text:  # the value is shown as a percentage: it is a ratio
        return True
    # Template code is not prose: printf "%.2f" says nothing of what the number means.
    words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", rule.name) + " " + re.sub(r"\{\{.*?\}\}", " ", text)
    return bool(RATIO_WORDS.search(words))


def expression_threshold(expr: str) -> tuple[str, float] | None:
    """The comparison that ends the expression and its constant (`> 0.05` -> ('>', 0.05))."""
    found = _FINAL_COMPARISON.search(expr.strip())
    return (found.group(1), float(found.group(2))) if found else None


def quoted_thresholds(rule: Rule) -> list[tuple[str, float]]:
    """(text as quoted, value in the expression's units) of each threshold in summary/description."""
    out = []
    for key in ("summary", "description"):
        for found in _QUOTED.finditer(rule.annotations.get(key, "")):
            value, unit = float(found.group(1)), (found.group(2) or "").lower()
            if unit in ("%", "percent"):
                value /= 100
            elif unit == "ms":
                value /= 1000
            out.append((found.group(0).strip(), value))
    return out


def _example(matcher: Any) -> str:
    """A label value the matcher accepts."""
    if matcher.op == "=":
        return matcher.value
    if matcher.op in ("!=", "!~"):
        for candidate in ("other", "zz-other", "0"):
            if matcher.matches(candidate):
                return candidate
        return "other"
    for alternative in matcher.value.split("|"):
        for candidate in (alternative, alternative.replace(".*", ""), alternative.replace(".", "0"), "x"):
            if matcher.matches(candidate):
                return candidate
    return "x"


def _outsider(matcher: Any) -> str | None:
    """A value a regex matcher refuses (the series a broader selector of the rule reads too)."""
    for candidate in ("other", "0", "zz"):
        if not matcher.matches(candidate):
            return candidate
    return None


def synthetic_series(rule: Rule, traffic: set[str]) -> dict[str, tuple[bool, dict[str, str]]]:
    """Series text -> (is a traffic counter, labels) for every series the rule reads: for each
    selector one series it matches, and one beside it with its regex labels refused."""
    assert rule.refs is not None
    out: dict[str, tuple[bool, dict[str, str]]] = {}
    for sel in rule.refs.selectors:
        if not sel.name:
            continue
        base = {m.label: _example(m) for m in sel.matchers if m.label != "__name__"}
        variants = [base]
        for m in sel.matchers:
            if m.op == "=~" and m.label not in ("job", "__name__"):
                other = _outsider(m)
                if other is not None:
                    variants.append({**base, m.label: other})
        if sel.name.endswith("_bucket"):
            variants = [{**v, "le": le} for v in variants for le in ("0.1", "1", "+Inf")]
        family = re.sub(r"_(bucket|count|sum)$", "", sel.name)
        is_traffic = sel.name in traffic or family in traffic
        for labels in variants:
            inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            out[f"{sel.name}{{{inner}}}"] = (is_traffic, labels)
    return out


def _values(is_traffic: bool, scale: float, steps: int, name: str) -> str:
    if is_traffic:
        return f"0+{scale * INTERVAL_S:g}x{steps}"
    if name.endswith(("_total", "_count", "_sum", "_bucket")):
        return f"0+{0.5 * INTERVAL_S:g}x{steps}"  # a resource counter (CPU seconds): half a core, any scale
    return f"1x{steps}"


def _test_name(scale: float) -> str:
    return f"every traffic counter at {scale:g}/s"


# (rules files' contents, contract counters, promtool) -> decisions: a gate judges the same
# rules after every trial; they are evaluated once per process.
_DECIDED: dict[tuple, tuple[dict[str, dict[float, bool]], Path]] = {}


def decisions(ctx: VerifyContext, rules: list[Rule]) -> dict[str, dict[float, bool]]:
    """rule -> scale -> fires, from one `promtool test rules` run: a test per scale holding the
    series every alert reads, each alert expected silent (promtool names those that fired)."""
    traffic = {m.name for m in ctx.contract.metrics if m.type in ("counter", "histogram")}
    key = (
        tuple((str(Path(p).resolve()), Path(p).read_bytes()) for p in ctx.options.rules),
        tuple(sorted(traffic)),
        ctx.options.promtool,
    )
    if key in _DECIDED:
        found, path = _DECIDED[key]
        ctx.artifacts["alert_intent_test"] = path
        return found
    found = _decide(ctx, rules, traffic)
    _DECIDED[key] = (found, ctx.artifacts["alert_intent_test"])
    return found


def _decide(ctx: VerifyContext, rules: list[Rule], traffic: set[str]) -> dict[str, dict[float, bool]]:
    longest = max((w[1] for r in rules for w in (r.refs.windows if r.refs else [])), default=0.0)
    eval_s = int(longest + max(r.for_s for r in rules) + 4 * INTERVAL_S)
    steps = eval_s // INTERVAL_S + 2
    series: dict[str, tuple[bool, dict[str, str]]] = {}
    for rule in rules:
        series.update(synthetic_series(rule, traffic))
    tests = [
        {
            "name": _test_name(scale),
            "interval": f"{INTERVAL_S}s",
            "input_series": [
                {"series": text, "values": _values(is_traffic, scale, steps, text.split("{")[0])}
                for text, (is_traffic, _labels) in sorted(series.items())
            ],
            "alert_rule_test": [{"alertname": r.name, "eval_time": f"{eval_s}s", "exp_alerts": []} for r in rules],
        }
        for scale in SCALES
    ]
    out_dir = Path(ctx.options.run_dir) / "verify" if ctx.options.run_dir else Path(tempfile.mkdtemp(prefix="intent-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "alert_intent_test.yml"
    doc = {
        "rule_files": [str(Path(p).resolve()) for p in ctx.options.rules],
        "evaluation_interval": f"{INTERVAL_S}s",
        "tests": tests,
    }
    header = "# Generated by verify/checks/alert_intent.py: every alert at 7 traffic scales, expected silent.\n"
    path.write_text(header + yaml.safe_dump(doc, sort_keys=False, width=200))
    ctx.artifacts["alert_intent_test"] = path
    code, output = run_promtool(ctx.options.promtool, ["test", "rules", str(path)], timeout=300.0)
    fired = fired_alerts(output)
    if code != 0 and not fired:
        last = (output.strip().splitlines() or ["no output"])[-1]
        raise MissingInput(f"promtool could not run the generated scale test {path}: {last}")
    return {r.name: {scale: (_test_name(scale), r.name) in fired for scale in SCALES} for r in rules}


def _flip(by_scale: dict[float, bool]) -> tuple[float, float] | None:
    """The first pair (s, 10 s) at which the decision changes, if any."""
    for low, high in itertools.pairwise(SCALES):
        if by_scale[low] != by_scale[high]:
            return low, high
    return None


def _alerts(ctx: VerifyContext) -> list[Rule]:
    rules = [r for r in ctx.rules if r.kind == "alert" and r.refs is not None]
    if not rules:
        raise MissingInput("nothing to judge: the rules define no alert")
    return rules


@check(
    "alerts-ratio-scale-invariant",
    group="static",
    needs=("rules", "contract"),
    symptom="an alert that promises a ratio or percentage decides by absolute traffic",
)
def alerts_ratio_scale_invariant(ctx: VerifyContext) -> CheckResult:
    rules = _alerts(ctx)
    found = decisions(ctx, rules)
    ev = Evidence(("alert", "promises", "fires at x" + "/".join(f"{s:g}" for s in SCALES), "verdict"))
    bad = []
    for rule in rules:
        ratio = speaks_of_ratio(rule)
        by_scale = found[rule.name]
        shown = "".join("F" if by_scale[s] else "." for s in SCALES)
        flip = _flip(by_scale)
        if flip is None:
            verdict = "same decision at every scale"
        elif ratio:
            state = "fires" if by_scale[flip[1]] else "silent"
            verdict = f"DEPENDS ON TRAFFIC: {state} at x{flip[1]:g}, not at x{flip[0]:g}"
            bad.append(rule.name)
        else:
            verdict = f"decides by absolute traffic (changes between x{flip[0]:g} and x{flip[1]:g}), as it says"
        ev.add(rule.name, "a ratio" if ratio else "an absolute level", shown, verdict)
    expected = "a rule that speaks of a ratio or percentage decides the same when every rate is x10"
    if bad:
        return CheckResult.failed(
            f"{len(bad)} alerts promise a ratio but decide by absolute traffic: {', '.join(bad)}",
            expected=expected,
            evidence=ev,
            measured=str(ctx.artifacts["alert_intent_test"]),
        )
    ratios = sum(1 for r in rules if speaks_of_ratio(r))
    return CheckResult.passed(
        f"{ratios} ratio alerts decide the same at every traffic scale (x{SCALES[0]:g}..x{SCALES[-1]:g}); "
        f"{len(rules)} alerts evaluated by promtool",
        expected=expected,
        evidence=ev,
        measured=str(ctx.artifacts["alert_intent_test"]),
    )


@check(
    "alerts-thresholds-match-annotations",
    group="static",
    needs=("rules",),
    symptom="an alert's annotations quote a threshold other than its expression's",
)
def alerts_thresholds_match_annotations(ctx: VerifyContext) -> CheckResult:
    rules = _alerts(ctx)
    ev = Evidence(("alert", "expression compares", "annotation quotes", "as a number", "agrees"))
    bad = []
    quoted_any = 0
    for rule in rules:
        final = expression_threshold(rule.expr)
        quotes = quoted_thresholds(rule)
        if not quotes:
            continue
        quoted_any += 1
        for text, value in quotes:
            agrees = final is not None and math.isclose(value, final[1], rel_tol=1e-9, abs_tol=1e-12)
            shown = f"{final[0]} {final[1]:g}" if final else "(no final comparison)"
            ev.add(rule.name, shown, text, f"{value:g}", agrees)
            if not agrees:
                bad.append(f"{rule.name} says {text!r} but compares {shown}")
    if bad:
        return CheckResult.failed("; ".join(bad), expected="the quoted threshold = the expression's", evidence=ev)
    return CheckResult.passed(
        f"{quoted_any} of {len(rules)} alerts quote a threshold, each the expression's own",
        expected="the quoted threshold = the expression's",
        evidence=ev,
    )
