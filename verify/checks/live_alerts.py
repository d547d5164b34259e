"""Live alert checks: each checkable alert fires and is routed; a healthy baseline fires nothing.

    >>> attach_live(ctx, pool=StackPool(local_stack_factory(tmp_path)))
    >>> REGISTRY["alert-fires-HighRateLimitHits"].run(ctx).verdict
    'pass'
    >>> REGISTRY["alerts-silent-when-healthy"].run(ctx).summary
    'no target alert pended or fired during 22 s of the baseline profile, nothing delivered'

The static checks prove the rules are well formed and promtool proves their logic on
synthetic series; these prove the whole path on a running stack: a real cause (an injected
fault, a flood past a rate limit, a stopped process) moves the real metric, Prometheus
evaluates the time-compressed rule into `firing` with the right labels, and Alertmanager
delivers it to the receivers its routes promise. Scenarios are data (verify/live/scenarios.py);
without a stack pool (verify.live.attach_live) every check here is skipped with the reason.
"""

from __future__ import annotations

from typing import Any

from verify.checks.base import CheckResult, Evidence, MissingInput, check, first_failure
from verify.live.driver import run_healthy, run_scenario
from verify.live.inputs import live_inputs
from verify.live.scenarios import HEALTHY_CHECK, SCENARIOS, AlertScenario

GROUP = "live-alerts"


def _am_route(ctx: Any) -> dict:
    try:
        config = ctx.alertmanager_config
    except MissingInput:
        from verify.assets import load_yaml
        from verify.context import MONITORING

        config = load_yaml(MONITORING / "alertmanager.yml")
    return config.get("route") or {}


def _synthetic_verdict(scenario: AlertScenario, ctx: Any, pool: Any) -> CheckResult:
    """A cause the harness cannot make real on this target: the user's rules on generated series."""
    import tempfile
    from pathlib import Path

    from verify.live.synthetic import judge_with_promtool

    out_dir = Path(ctx.options.run_dir) / "verify" if ctx.options.run_dir else Path(tempfile.mkdtemp())
    outcome = judge_with_promtool(scenario, ctx.rules, list(ctx.options.rules), _am_route(ctx), out_dir)
    how = (
        "judged by promtool on generated series with your rules and routes: "
        f"the harness cannot break the target {pool.label}"
    )
    evidence = Evidence(("step", "detail"))
    evidence.add("cause", scenario.cause)
    evidence.add("test", str(outcome.test_file or "-"))
    for line in outcome.promtool_says:
        evidence.add("promtool", line)
    evidence.add("routes", ", ".join(sorted(outcome.receivers)) or "nobody")
    expected = f"{scenario.alert} firing for job {', '.join(scenario.jobs)} with severity={scenario.severity}"
    if outcome.problem:
        return CheckResult.failed(f"{outcome.problem} ({how})", expected=expected, evidence=evidence)
    return first_failure(
        [(not outcome.fired, f"{scenario.alert} does not fire although {scenario.cause} ({how})")],
        f"{scenario.alert} fires and routes to {', '.join(sorted(outcome.receivers))} ({how})",
        measured=f"promtool exit {'0' if outcome.fired else 'non-zero'}",
        expected=expected,
        evidence=evidence,
    )


def _verdict(scenario: AlertScenario, ctx: Any) -> CheckResult:
    pool = live_inputs(ctx).require_pool()
    if not getattr(pool, "breakable", True) and (scenario.stack != "healthy" or scenario.stop_component):
        return _synthetic_verdict(scenario, ctx, pool)
    result = _live_verdict(scenario, ctx, pool)
    result.summary += f" (judged live {pool.label})"
    return result


def _live_verdict(scenario: AlertScenario, ctx: Any, pool: Any) -> CheckResult:
    stack = pool.get(scenario.stack)
    try:
        outcome = run_scenario(stack, scenario, _am_route(ctx))
    finally:
        if scenario.destructive:
            pool.retire(scenario.stack)
    evidence = Evidence(("at_s", "step", "detail"))
    for row in outcome.timeline:
        evidence.add(*row)
    if outcome.traffic:
        evidence.add("", "answers", outcome.traffic)
    expected = (
        f"{scenario.alert} firing for job {', '.join(scenario.jobs)} with severity={scenario.severity}, "
        f"delivered to exactly {', '.join(sorted(outcome.expected_receivers))}"
    )
    measured = (
        f"firing: {len(outcome.firing)} alert(s); delivered to {', '.join(sorted(outcome.receivers)) or 'nobody'}"
    )
    if outcome.problem:
        return CheckResult.failed(outcome.problem, expected=expected, evidence=evidence)
    missing = outcome.expected_receivers - outcome.receivers
    extra = outcome.receivers - outcome.expected_receivers
    misrouted = "; ".join(
        part
        for part in (
            f"not delivered to {', '.join(sorted(missing))}" if missing else "",
            f"also delivered to {', '.join(sorted(extra))}" if extra else "",
        )
        if part
    )
    return first_failure(
        [
            (not outcome.fired, f"{scenario.alert} never fired although {scenario.cause}"),
            (outcome.label_problems, f"{scenario.alert} fired with wrong labels: {'; '.join(outcome.label_problems)}"),
            (not outcome.delivered, f"{scenario.alert} fired but was misrouted: {misrouted}"),
        ],
        f"{scenario.alert} fired and was routed ({scenario.cause})",
        measured=measured,
        expected=expected,
        evidence=evidence,
    )


def _register(scenario: AlertScenario) -> None:
    @check(
        scenario.check_name,
        group=GROUP,
        symptom=f"{scenario.alert} does not fire, carries wrong labels or is misrouted when its signal crosses "
        "the threshold",
    )
    def fires(ctx: Any) -> CheckResult:
        return _verdict(scenario, ctx)


for _scenario in SCENARIOS.values():
    _register(_scenario)


@check(HEALTHY_CHECK, group=GROUP, symptom="an alert pends, fires or is delivered although the target is healthy")
def silent_when_healthy(ctx: Any) -> CheckResult:
    """The Locust baseline profile on a healthy twin for a full compressed window: silence."""
    pool = live_inputs(ctx).require_pool()
    result = _silent_verdict(pool)
    result.summary += f" (judged live {pool.label})"
    return result


def _silent_verdict(pool: Any) -> CheckResult:
    outcome = run_healthy(pool.get("healthy"))
    evidence = Evidence(("at_s", "alert", "state"))
    for row in outcome.noisy:
        evidence.add(*row)
    for receiver, name in outcome.deliveries:
        evidence.add("", name, f"delivered to {receiver}")
    evidence.add("", "load", outcome.traffic)
    if outcome.host:
        evidence.add("", ", ".join(sorted(outcome.host)), "host alert (the shared machine, not the target): ignored")
    expected = (
        "no target alert pending or firing, no firing delivery; the baseline load complete with no error, "
        "429, client failure or failed check"
    )
    measured = (
        f"{len(outcome.noisy)} alert state(s), {len(outcome.deliveries)} delivery(ies) in {outcome.duration_s:g} s"
    )
    if outcome.problem:
        return CheckResult.failed(outcome.problem, expected=expected, evidence=evidence)
    names = sorted({name for _, name, _ in outcome.noisy} | {name for _, name in outcome.deliveries})
    return first_failure(
        [
            (not outcome.ok, f"alerts went off on a healthy target: {', '.join(names)}"),
            (
                outcome.traffic_problems,
                f"the baseline load itself was not healthy: {'; '.join(outcome.traffic_problems)}",
            ),
        ],
        f"no target alert pended or fired during {outcome.duration_s:g} s of the baseline profile, nothing delivered",
        measured=measured,
        expected=expected,
        evidence=evidence,
    )
