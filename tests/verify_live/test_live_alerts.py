"""The live alert scenarios against local stacks (rules compressed 60x, 1 s scrapes).

Order matters and is the file's: on the healthy stack the baseline runs first, then the
traffic scenarios, and ServiceDown last (it stops the twin; the pool retires that stack).
The faulty stack (error-burst=0.5 + slow-route=2500) serves HighErrorRate and
HighResponseTime, and proves the healthy check can fail; its scenarios run in a thread of
their own (fixture `faulty`) beside the healthy stack's. Two stacks for the whole file, and
every wait is a condition polled with a deadline: all of it runs in CI (about 1.5 minutes).
At 60x a 5m window is 5 s (4 scrapes of 1 s is the floor the stack clamps ranges to).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
import yaml

from codesync_load.ledger import Ledger, read_status
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


def assert_fired(result: CheckResult, alert: str, receivers: set[str]) -> None:
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


def test_healthy_baseline_fires_nothing(stack_pool: StackPool, faulty: dict[str, Future]) -> None:
    # `faulty`: the faulty stack's scenarios start now, in their own thread, beside this stack's.
    result = run("alerts-silent-when-healthy", stack_pool)
    assert result.verdict == "pass", result.render()
    stack = stack_pool.get("healthy")
    # A full compressed window: the longest target rule settles in 13 s at 60x (the postgres
    # exporter's job is scraped every 2 s at most, so its rules' windows are held to 4 x 2 s,
    # plus 5 s of `for`), + 2 evaluations.
    assert result.measured.startswith("0 alert state(s), 0 delivery(ies) in 15 s"), result.render()
    for name in SCENARIOS:
        assert not alerts_delivered(stack.alert_log, name)
    # The load was the Locust baseline profile (20 users, users and pacing unchanged) compressed
    # to those 15 s, and it was healthy by its own ledger.
    load = next(row[2] for row in result.evidence.rows if row[1] == "load")
    run_name, counts = load.split(": ", 1)
    assert counts.endswith("; 429s 0, errors 0, client failures 0, failed checks 0"), load
    run_dir = stack.run_dir / run_name
    profile = json.loads((run_dir / "run.json").read_text())["profile"]
    assert (profile["name"], profile["total_duration_s"]) == ("baseline", pytest.approx(15.0))
    assert [stage["users"] for stage in profile["stages"]] == [20, 20]
    ledger = Ledger.read(run_dir / "ledger.json")
    assert read_status(run_dir / "ledger.json") == (True, "")
    assert counts.startswith(f"http requests {ledger.total('http')}, ") and ledger.total("http") > 0


def test_rate_limit_flood_fires_high_rate_limit_hits(stack_pool: StackPool) -> None:
    result = run("alert-fires-HighRateLimitHits", stack_pool)
    assert_fired(result, "HighRateLimitHits", WARNING_ROUTE)
    traffic = next(row[2] for row in result.evidence.rows if row[1] == "answers")
    assert "200: 30" in traffic and "429: " in traffic  # exactly the limit admitted, the rest refused
    assert firing_values(result)[0] > 10  # rejections/s, the rule's threshold


def test_yjs_refusals_fire_websocket_connection_failures(stack_pool: StackPool) -> None:
    result = run("alert-fires-WebSocketConnectionFailures", stack_pool)
    assert_fired(result, "WebSocketConnectionFailures", WARNING_ROUTE)
    traffic = next(row[2] for row in result.evidence.rows if row[1] == "answers")
    assert traffic.startswith("close 1008: "), traffic  # every attempt after the first 100 was refused
    assert "job=codesync-yjs" in next(row[2] for row in result.evidence.rows if row[1] == "firing")
    assert firing_values(result)[0] > 0.1


def test_stopped_twin_fires_service_down_on_the_critical_route(stack_pool: StackPool) -> None:
    stack = stack_pool.get("healthy")
    instances = {urlsplit(stack.api_url).netloc, urlsplit(stack.yjs_url).netloc}
    result = run("alert-fires-ServiceDown", stack_pool)
    assert_fired(result, "ServiceDown", CRITICAL_ROUTE)
    firing = " ".join(row[2] for row in result.evidence.rows if row[1] == "firing")
    for instance in instances:
        assert f"instance={instance}" in firing
    assert "severity=critical" in firing
    assert "healthy" not in stack_pool.stacks  # retired: its twin is gone
    assert not [r for r, _ in alerts_delivered(stack.alert_log, "ServiceDown") if r == "warning-batched"]


@pytest.fixture(scope="module")
def faulty(stack_pool: StackPool, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Future]]:
    """The faulty stack's scenarios, in the file's order, in a thread of their own.

    The two stacks share nothing (each its own twin, Prometheus and Alertmanager): while the
    healthy stack's tests run one after the other in the main thread, the faulty stack's run
    here, which takes about a third off the file, whose time is spent waiting for compressed
    windows to fill. Each step returns its result and what its test reads of the stack at
    that moment (a later step on the same stack delivers more alerts).
    """
    config = yaml.safe_load((MONITORING / "alertmanager.yml").read_text())
    warning = next(r for r in config["route"]["routes"] if r.get("matchers") == ['severity="warning"'])
    warning["receiver"] = "info-webhook"
    promised = tmp_path_factory.mktemp("promised") / "alertmanager.yml"
    promised.write_text(yaml.safe_dump(config))

    def error_burst() -> tuple[CheckResult, str, list]:
        stack = stack_pool.get("faulty")
        result = run("alert-fires-HighErrorRate", stack_pool)
        return result, urlsplit(stack.api_url).netloc, alerts_delivered(stack.alert_log, "HighErrorRate")

    def silent_on_faulty() -> CheckResult:
        pool = StackPool(stack_pool.factory)
        pool.stacks["healthy"] = stack_pool.get("faulty")  # the faulty stack, presented as healthy; stack_pool owns it
        return run("alerts-silent-when-healthy", pool)

    # Expectations come from the Alertmanager config given to the check: one that promises
    # warnings to info-webhook disagrees with what the running Alertmanager does.
    misrouted = VerifyOptions(alertmanager_config=promised)
    steps: list[tuple[str, Callable[[], object]]] = [
        ("error-burst", error_burst),
        ("misrouted", lambda: run("alert-fires-HighErrorRate", stack_pool, misrouted)),
        ("slow-autosave", lambda: run("alert-fires-HighResponseTime", stack_pool)),
        ("silent-on-faulty", silent_on_faulty),
    ]
    with ThreadPoolExecutor(max_workers=1) as thread:  # one thread: the steps run in this order
        yield {name: thread.submit(step) for name, step in steps}


def test_error_burst_fires_high_error_rate(faulty: dict[str, Future]) -> None:
    result, instance, delivered = faulty["error-burst"].result()
    assert_fired(result, "HighErrorRate", WARNING_ROUTE)
    traffic = next(row[2] for row in result.evidence.rows if row[1] == "answers")
    assert "500: " in traffic and "200: " in traffic
    assert 0.05 < firing_values(result)[0] < 1.0  # a ratio of 5xx: some, not all
    # Exactly the rule's labels and the scrape's, nothing more: value first, then sorted labels.
    firing = next(row[2] for row in result.evidence.rows if row[1] == "firing")
    assert firing.split(" ", 1)[1] == f"instance={instance} job=codesync-backend severity=warning", firing
    assert {receiver for receiver, _ in delivered} == WARNING_ROUTE  # a warning never takes the critical route
    assert {(a["labels"]["severity"], a["labels"]["job"], a["labels"]["instance"]) for _, a in delivered} == {
        ("warning", "codesync-backend", instance)
    }


def test_a_route_other_than_promised_fails_as_misrouted(faulty: dict[str, Future]) -> None:
    result = faulty["misrouted"].result()
    assert result.verdict == "fail", result.render()
    assert result.summary == (
        "HighErrorRate fired but was misrouted: not delivered to info-webhook; also delivered to warning-batched"
        " (judged live on the embedded twin)"
    )


def test_slow_autosave_fires_high_response_time(faulty: dict[str, Future]) -> None:
    result = faulty["slow-autosave"].result()
    assert_fired(result, "HighResponseTime", WARNING_ROUTE)
    assert 2.0 < firing_values(result)[0] <= 5.0  # p95 interpolated inside the (1, 5] bucket


def test_silent_check_fails_when_the_target_is_faulty(faulty: dict[str, Future]) -> None:
    # The same baseline load against the twin answering half of /api with 500: the check
    # must name the alert that went off, so a passing baseline means something.
    result = faulty["silent-on-faulty"].result()
    assert result.verdict == "fail", result.render()
    assert result.summary.startswith("alerts went off on a healthy target: HighErrorRate")
    load = next(row[2] for row in result.evidence.rows if row[1] == "load")
    assert not load.endswith("; 429s 0, errors 0, client failures 0, failed checks 0"), load
