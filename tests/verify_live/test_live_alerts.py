"""The live alert scenarios against local stacks (rules compressed 30x, 1 s scrapes).

Order matters and is the file's: on the healthy stack the baseline runs first, then the
traffic scenarios, and ServiceDown last (it stops the twin; the pool retires that stack).
The faulty stack (error-burst=0.5 + slow-route=2500) serves HighErrorRate and
HighResponseTime, and proves the healthy check can fail. Without CODESYNC_SLOW=1 only the
baseline and ServiceDown run (about a minute); the rest are marked slow.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from codesync_load.stack.webhook import alerts_delivered
from tests.verify_live.conftest import live_context
from verify.checks import REGISTRY, CheckResult
from verify.context import MONITORING, VerifyOptions
from verify.live import StackPool
from verify.live.scenarios import SCENARIOS

WARNING_ROUTE = {"harness", "warning-batched"}
CRITICAL_ROUTE = {"harness", "critical-immediate"}


def run(name: str, pool: StackPool, options: VerifyOptions | None = None) -> CheckResult:
    result = REGISTRY[name].run(live_context(pool=pool, options=options))
    assert result.verdict != "error", result.render()
    return result


def firing_values(result: CheckResult) -> list[float]:
    """The alert's value at firing, one per alert, from the evidence rows ("value=12.5 job=...")."""
    return [float(row[2].split()[0].removeprefix("value=")) for row in result.evidence.rows if row[1] == "firing"]


def assert_fired(result: CheckResult, pool: StackPool, alert: str, receivers: set[str]) -> None:
    assert result.verdict == "pass", result.render()
    assert (
        result.measured == f"firing: {len(SCENARIOS[alert].jobs)} alert(s); delivered to {', '.join(sorted(receivers))}"
    )
    steps = [row[1] for row in result.evidence.rows]
    assert steps.index("firing") < steps.index("delivered")


def test_live_alert_checks_are_registered_one_per_scenario() -> None:
    live = sorted(name for name, chk in REGISTRY.items() if chk.group == "live-alerts")
    assert live == sorted(
        [
            "alert-fires-HighErrorRate",
            "alert-fires-HighResponseTime",
            "alert-fires-HighRateLimitHits",
            "alert-fires-WebSocketConnectionFailures",
            "alert-fires-ServiceDown",
            "alerts-silent-when-healthy",
        ]
    )


def test_healthy_baseline_fires_nothing(stack_pool: StackPool) -> None:
    result = run("alerts-silent-when-healthy", stack_pool)
    assert result.verdict == "pass", result.render()
    stack = stack_pool.get("healthy")
    # A full compressed window: the longest target rule is 10 s range + 10 s for at 30x.
    assert result.measured.startswith("0 alert state(s), 0 delivery(ies) in 22 s"), result.render()
    for name in SCENARIOS:
        assert not alerts_delivered(stack.alert_log, name)


@pytest.mark.slow
def test_rate_limit_flood_fires_high_rate_limit_hits(stack_pool: StackPool) -> None:
    result = run("alert-fires-HighRateLimitHits", stack_pool)
    assert_fired(result, stack_pool, "HighRateLimitHits", WARNING_ROUTE)
    traffic = next(row[2] for row in result.evidence.rows if row[1] == "answers")
    assert "200: 30" in traffic and "429: " in traffic  # exactly the limit admitted, the rest refused
    assert firing_values(result)[0] > 10  # rejections/s, the rule's threshold


@pytest.mark.slow
def test_yjs_refusals_fire_websocket_connection_failures(stack_pool: StackPool) -> None:
    result = run("alert-fires-WebSocketConnectionFailures", stack_pool)
    assert_fired(result, stack_pool, "WebSocketConnectionFailures", WARNING_ROUTE)
    traffic = next(row[2] for row in result.evidence.rows if row[1] == "answers")
    assert traffic.startswith("1008: "), traffic  # every attempt after the first 100 was refused
    assert "job=codesync-yjs" in next(row[2] for row in result.evidence.rows if row[1] == "firing")
    assert firing_values(result)[0] > 0.1


def test_stopped_twin_fires_service_down_on_the_critical_route(stack_pool: StackPool) -> None:
    stack = stack_pool.get("healthy")
    instances = {urlsplit(stack.api_url).netloc, urlsplit(stack.yjs_url).netloc}
    result = run("alert-fires-ServiceDown", stack_pool)
    assert_fired(result, stack_pool, "ServiceDown", CRITICAL_ROUTE)
    firing = " ".join(row[2] for row in result.evidence.rows if row[1] == "firing")
    for instance in instances:
        assert f"instance={instance}" in firing
    assert "severity=critical" in firing
    assert "healthy" not in stack_pool.stacks  # retired: its twin is gone
    assert not [r for r, _ in alerts_delivered(stack.alert_log, "ServiceDown") if r == "warning-batched"]


@pytest.mark.slow
def test_error_burst_fires_high_error_rate(stack_pool: StackPool) -> None:
    result = run("alert-fires-HighErrorRate", stack_pool)
    assert_fired(result, stack_pool, "HighErrorRate", WARNING_ROUTE)
    traffic = next(row[2] for row in result.evidence.rows if row[1] == "answers")
    assert "500: " in traffic and "200: " in traffic
    assert 0.05 < firing_values(result)[0] < 1.0  # a ratio of 5xx: some, not all


@pytest.mark.slow
def test_a_route_other_than_promised_fails_as_misrouted(stack_pool: StackPool, tmp_path: Path) -> None:
    # Expectations come from the Alertmanager config given to the check: one that promises
    # warnings to info-webhook disagrees with what the running Alertmanager does.
    config = yaml.safe_load((MONITORING / "alertmanager.yml").read_text())
    warning = next(r for r in config["route"]["routes"] if r.get("matchers") == ['severity="warning"'])
    warning["receiver"] = "info-webhook"
    promised = tmp_path / "alertmanager.yml"
    promised.write_text(yaml.safe_dump(config))
    result = run("alert-fires-HighErrorRate", stack_pool, VerifyOptions(alertmanager_config=promised))
    assert result.verdict == "fail", result.render()
    assert result.summary == (
        "HighErrorRate fired but was misrouted: not delivered to info-webhook; also delivered to warning-batched"
    )


@pytest.mark.slow
def test_slow_autosave_fires_high_response_time(stack_pool: StackPool) -> None:
    result = run("alert-fires-HighResponseTime", stack_pool)
    assert_fired(result, stack_pool, "HighResponseTime", WARNING_ROUTE)
    assert 2.0 < firing_values(result)[0] <= 5.0  # p95 interpolated inside the (1, 5] bucket


@pytest.mark.slow
def test_silent_check_fails_when_the_target_is_faulty(stack_pool: StackPool) -> None:
    # The same baseline traffic against the twin answering half of /api with 500: the check
    # must name the alert that went off, so a passing baseline means something.
    pool = StackPool(stack_pool.factory)
    pool.stacks["healthy"] = stack_pool.get("faulty")  # the faulty stack, presented as healthy; stack_pool owns it
    result = run("alerts-silent-when-healthy", pool)
    assert result.verdict == "fail", result.render()
    assert result.summary.startswith("alerts went off on a healthy target: HighErrorRate")
