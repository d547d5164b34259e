"""Drive one alert scenario against a stack and wait (bounded) for the alert end to end.

    >>> outcome = run_scenario(stack, SCENARIOS["HighErrorRate"], am_config["route"])
    >>> outcome.fired, outcome.receivers, outcome.firing[0]["labels"]["severity"]
    (True, {'harness', 'warning-batched'}, 'warning')
    >>> quiet = run_healthy(stack)               # the Locust baseline profile for a full window
    >>> quiet.noisy                              # [] when no target alert pended or fired

The waits are derived from the rules Prometheus is running (its /api/v1/rules: the
compressed range of the expression plus `for`, plus a few evaluation intervals), so the
same driver serves a stack compressed 60x and one that is not, and never sleeps longer
than the condition needs: every wait polls with a deadline.

Two proofs per alert: Prometheus holds it `firing` with the expected labels (alertname,
severity, job, instance), and Alertmanager delivered it to exactly the receivers its route
tree gives for those labels (the harness webhook's log names the receiver of each delivery;
a stack without the log is asked /api/v2/alerts/groups instead).
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from codesync_load.errors import HarnessError
from codesync_load.stack import promapi
from codesync_load.stack.durations import parse_duration
from codesync_load.stack.webhook import read_deliveries
from verify.live.scenarios import HEALTHY_PROFILE, HOST_ALERTS, AlertScenario
from verify.live.traffic import running
from verify.routing import route_alert

T = TypeVar("T")
_RANGE_RE = re.compile(r"\[(\d+(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*)(?::[^\]]*)?\]")
SLACK_S = 20.0  # beyond range + for + evaluations: a busy machine's scrape and delivery delays
GRACE_SLACK_S = 5.0  # beyond the longest route timer: a busy machine's delivery delay


@dataclass
class RuleTiming:
    """What Prometheus runs for one alert: the longest range in its expression and its `for`."""

    name: str
    range_s: float
    for_s: float
    labels: dict[str, str]

    @property
    def settle_s(self) -> float:
        return self.range_s + self.for_s


@dataclass
class ScenarioOutcome:
    scenario: AlertScenario
    fired: bool = False
    delivered: bool = False
    firing: list[dict] = field(default_factory=list)
    receivers: set[str] = field(default_factory=set)
    expected_receivers: set[str] = field(default_factory=set)
    label_problems: list[str] = field(default_factory=list)
    timeline: list[tuple[float, str, str]] = field(default_factory=list)  # (s since start, step, detail)
    traffic: str = ""
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.fired and self.delivered and not self.label_problems and not self.problem


@dataclass
class HealthyOutcome:
    duration_s: float
    noisy: list[tuple[float, str, str]] = field(default_factory=list)  # (s, alertname, state) of target alerts
    host: set[str] = field(default_factory=set)  # host alerts seen (reported, not failed on)
    deliveries: list[tuple[str, str]] = field(default_factory=list)  # (receiver, alertname) firing
    traffic: str = ""  # what the load's ledger says was sent
    traffic_problems: list[str] = field(default_factory=list)  # what was not healthy about the load itself
    problem: str = ""

    @property
    def ok(self) -> bool:
        return not self.noisy and not self.deliveries and not self.problem


def poll(probe: Callable[[], T], timeout: float, interval: float = 0.5) -> T | None:
    """The first truthy result of `probe` within `timeout` s, else None (probe errors retried)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = probe()
        except (OSError, ValueError, KeyError):
            result = None
        if result:
            return result
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def rule_timings(prometheus_url: str) -> tuple[dict[str, RuleTiming], float]:
    """Alert name -> timing, and the evaluation interval of the rule groups (max)."""
    data = promapi.get_json(f"{prometheus_url}/api/v1/rules?type=alert")
    out: dict[str, RuleTiming] = {}
    interval = 1.0
    for group in data["data"]["groups"]:
        interval = max(interval, float(group.get("interval") or 1.0))
        for rule in group.get("rules") or []:
            ranges = [parse_duration(m.group(1)) / 1000 for m in _RANGE_RE.finditer(rule.get("query", ""))]
            out[rule["name"]] = RuleTiming(
                rule["name"],
                max(ranges, default=0.0),
                float(rule.get("duration") or 0.0),
                dict(rule.get("labels") or {}),
            )
    return out, interval


def firing_deliveries(alert_log: Any, alertname: str | None, since: float) -> list[tuple[str, dict]]:
    """(receiver, alert) of every firing alert delivered to the harness webhook after `since`."""
    out = []
    for delivery in read_deliveries(alert_log):
        if float(delivery.get("received_at") or 0) < since:
            continue
        payload = delivery.get("payload") or {}
        for alert in payload.get("alerts") or []:
            name = alert.get("labels", {}).get("alertname")
            if alert.get("status") == "firing" and (alertname is None or name == alertname):
                out.append((str(payload.get("receiver", "")), alert))
    return out


def held_by_receivers(stack: Any, alertname: str) -> set[str]:
    """Receivers whose last delivery of some `alertname` alert said firing (resolution not delivered).

    Empty for a stack without the harness webhook's log: then Prometheus's state is all there is.
    """
    if stack.alert_log is None:
        return set()
    last: dict[tuple[str, str], str] = {}  # (receiver, the alert's labels) -> status of its last delivery
    for delivery in read_deliveries(stack.alert_log):
        payload = delivery.get("payload") or {}
        for alert in payload.get("alerts") or []:
            labels = alert.get("labels", {})
            if labels.get("alertname") == alertname:
                last[(str(payload.get("receiver", "")), _labels_text(labels))] = str(alert.get("status"))
    return {receiver for (receiver, _), status in last.items() if status == "firing"}


def _group_receivers(alertmanager_url: str, alertname: str) -> set[str]:
    return {
        group["receiver"]["name"]
        for group in promapi.alertmanager_groups(alertmanager_url)
        if any(a["labels"].get("alertname") == alertname for a in group.get("alerts") or [])
    }


def run_scenario(stack: Any, scenario: AlertScenario, am_route: dict) -> ScenarioOutcome:
    """Push the scenario's signal over its threshold until its alert is firing and delivered."""
    outcome = ScenarioOutcome(scenario)
    started = time.time()

    def mark(step: str, detail: str) -> None:
        outcome.timeline.append((round(time.time() - started, 1), step, detail))

    timings, interval = rule_timings(stack.prometheus_url)
    timing = timings.get(scenario.alert)
    if timing is None:
        outcome.problem = f"Prometheus runs no alert rule named {scenario.alert}"
        return outcome
    expected_labels = {"alertname": scenario.alert, "severity": scenario.severity}
    outcome.expected_receivers = {
        r.receiver for r in route_alert(am_route, {**expected_labels, "job": scenario.jobs[0]})
    }
    fire_timeout = timing.settle_s + 4 * interval + SLACK_S
    # An alert still active from an earlier scenario on this stack would prove nothing: wait it
    # out, in Prometheus and in Alertmanager (a receiver whose last word was "firing" would not
    # be told again of a new firing with the same labels before its repeat_interval).
    if (
        poll(
            lambda: (
                not [a for a in _alerts(stack, scenario.alert) if a.get("state") != "inactive"]
                and not held_by_receivers(stack, scenario.alert)
            ),
            fire_timeout,
        )
        is None
    ):
        outcome.problem = f"{scenario.alert} was still active from before the scenario; nothing to prove on this stack"
        return outcome
    started = time.time()
    mark("start", f"range {timing.range_s:g} s + for {timing.for_s:g} s; waiting up to {fire_timeout:g} s")

    with running(stack, scenario.traffic) as traffic:
        if traffic is not None:
            mark("traffic", f"recipe {scenario.traffic} started")
        if scenario.stop_component:
            stack.stop_component(scenario.stop_component)
            mark("stopped", scenario.stop_component)

        def all_jobs_firing() -> list[dict]:
            firing = [a for a in promapi.firing_alerts(stack.prometheus_url, scenario.alert)]
            jobs = {a["labels"].get("job") for a in firing}
            return firing if set(scenario.jobs) <= jobs else []

        firing = poll(all_jobs_firing, fire_timeout)
        if firing:
            outcome.fired = True
            outcome.firing = firing
            for alert in firing:  # the value first: the evidence table clips long cells
                mark("firing", f"value={float(alert.get('value') or 'nan'):.4g} " + _labels_text(alert["labels"]))
            outcome.receivers = _wait_delivery(
                stack,
                scenario,
                outcome.expected_receivers,
                started,
                timing.for_s + 4 * interval + SLACK_S,
                grace=_longest_route_timer(stack) + 4 * interval + GRACE_SLACK_S,
            )
            outcome.delivered = outcome.receivers == outcome.expected_receivers
            mark("delivered", ", ".join(sorted(outcome.receivers)) or "nowhere")
        else:
            states = {a["labels"].get("job", "?"): a.get("state") for a in _alerts(stack, scenario.alert)}
            mark("timeout", f"not firing for jobs {', '.join(scenario.jobs)} (seen: {states or 'nothing'})")
        outcome.traffic = traffic.summary() if traffic is not None else ""
    for alert in outcome.firing:
        labels = alert["labels"]
        for key, value in expected_labels.items():
            if labels.get(key) != value:
                outcome.label_problems.append(f"{key}={labels.get(key)!r}, expected {value!r}")
        if labels.get("job") not in scenario.jobs:
            outcome.label_problems.append(f"job={labels.get('job')!r}, expected one of {scenario.jobs}")
        if not labels.get("instance"):
            outcome.label_problems.append("no instance label")
    return outcome


def _alerts(stack: Any, alertname: str) -> list[dict]:
    try:
        return [a for a in promapi.rule_alerts(stack.prometheus_url) if a["labels"].get("alertname") == alertname]
    except (OSError, ValueError, KeyError):
        return []


def _labels_text(labels: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "alertname")


def _longest_route_timer(stack: Any) -> float:
    """The longest group_wait or group_interval of the running Alertmanager's route tree, in s.

    Once one receiver has the alert, every other route it matches delivers within its own
    group_wait (a new group) or group_interval (a group that existed): past the longest of
    them, a receiver still without it is not going to get it. Alertmanager's defaults apply
    where the tree sets none; SLACK_S when the config cannot be read (no shortcut then).
    """
    try:
        status = promapi.get_json(f"{stack.alertmanager_url}/api/v2/status")
        root = yaml.safe_load(status["config"]["original"])["route"]
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError):
        return SLACK_S
    longest = 0.0

    def walk(route: dict, wait: str, group_interval: str) -> None:
        nonlocal longest
        wait, group_interval = str(route.get("group_wait", wait)), str(route.get("group_interval", group_interval))
        longest = max(longest, parse_duration(wait) / 1000, parse_duration(group_interval) / 1000)
        for child in route.get("routes") or []:
            walk(child, wait, group_interval)

    walk(root, "30s", "5m")
    return longest


def _wait_delivery(
    stack: Any, scenario: AlertScenario, expected: set[str], since: float, timeout: float, grace: float
) -> set[str]:
    """Receivers that got the alert (for every expected job), once they include `expected`, or
    `grace` s after the first receiver got it (the others had their time: see _longest_route_timer)."""

    def received() -> set[str]:
        if stack.alert_log is not None:
            by_receiver: dict[str, set[str]] = {}
            for receiver, alert in firing_deliveries(stack.alert_log, scenario.alert, since):
                by_receiver.setdefault(receiver, set()).add(alert.get("labels", {}).get("job", ""))
            return {r for r, jobs in by_receiver.items() if set(scenario.jobs) <= jobs}
        return _group_receivers(stack.alertmanager_url, scenario.alert)

    first_at: list[float] = []

    def settled() -> set[str] | None:
        got = received()
        if got and not first_at:
            first_at.append(time.monotonic())
        return got if expected <= got or (first_at and time.monotonic() - first_at[0] > grace) else None

    got = poll(settled, timeout)
    return got if got is not None else received()


def target_alerts(stack: Any) -> list[dict]:
    """Pending or firing alerts about the target (host-resource alerts left out)."""
    return [
        a
        for a in promapi.rule_alerts(stack.prometheus_url)
        if a.get("state") in ("pending", "firing") and a["labels"].get("alertname") not in HOST_ALERTS
    ]


def run_healthy(stack: Any, quiet_timeout: float | None = None) -> HealthyOutcome:
    """The Locust baseline profile, compressed to the longest rule's range + for (plus two
    evaluations), against the stack; nothing may pend or fire, and the load itself must be
    healthy (complete ledger, no error, refusal, failure or failed check).

    First waits (bounded) for the stack to be quiet, so an earlier scenario's alert that is
    still resolving is not blamed on the baseline. Why the real profile and not a traffic
    recipe: "the healthy baseline fires nothing" is a promise about the load users run
    (`codesync-load run --profile baseline`): its editors, viewers, browsers and onboarding
    wave, paced as people, compressed in time like the rules, users and pacing unchanged.
    """
    from codesync_load.load import stack_target, start_load

    timings, interval = rule_timings(stack.prometheus_url)
    longest = max((t.settle_s for name, t in timings.items() if name not in HOST_ALERTS), default=60.0)
    duration = longest + 2 * interval
    outcome = HealthyOutcome(duration)
    if (
        poll(lambda: not target_alerts(stack), quiet_timeout if quiet_timeout is not None else duration + SLACK_S)
        is None
    ):
        left = sorted({a["labels"]["alertname"] for a in target_alerts(stack)})
        outcome.problem = f"the stack was not quiet before the baseline (still active: {', '.join(left)})"
        return outcome
    profile = healthy_profile(duration)
    run_dir = Path(tempfile.mkdtemp(prefix=f"{profile.name}-load-", dir=getattr(stack, "run_dir", None)))
    started = time.time()
    try:
        child = start_load(profile, stack_target(stack), run_dir)
    except HarnessError as err:
        outcome.problem = f"the {profile.name} load could not start: {err}"
        return outcome
    try:
        seen: set[tuple[str, str]] = set()
        # The load ends by itself after Locust's start-up and the profile; the deadline only
        # bounds a child that hangs.
        deadline = time.monotonic() + profile.total_duration + SLACK_S
        while child.alive() and time.monotonic() < deadline:
            try:
                alerts = promapi.rule_alerts(stack.prometheus_url)
            except (OSError, ValueError, KeyError):
                alerts = []
            for alert in alerts:
                name, state = alert["labels"].get("alertname", "?"), alert.get("state", "?")
                if name in HOST_ALERTS:
                    outcome.host.add(name)
                elif state in ("pending", "firing") and (name, state) not in seen:
                    seen.add((name, state))
                    outcome.noisy.append((round(time.time() - started, 1), name, state))
            time.sleep(interval)
        if child.alive():
            outcome.problem = f"the {profile.name} load did not end within {profile.total_duration + SLACK_S:g} s"
    finally:
        code = child.stop(grace=30.0)
    outcome.traffic, outcome.traffic_problems = judge_load(run_dir, code)
    if stack.alert_log is not None:
        outcome.deliveries = sorted(
            {
                (r, a["labels"].get("alertname", "?"))
                for r, a in firing_deliveries(stack.alert_log, None, started)
                if a["labels"].get("alertname") not in HOST_ALERTS
            }
        )
    return outcome


def healthy_profile(duration: float) -> Any:
    """HEALTHY_PROFILE with its stages scaled to last `duration` seconds in all."""
    from scenarios.profiles import load_profile

    full = load_profile(HEALTHY_PROFILE, duration_scale=1.0)
    return full.scaled(duration / full.total_duration)


def judge_load(run_dir: Path, code: int | None) -> tuple[str, list[str]]:
    """(what the run's ledger says was sent, what was not healthy about it)."""
    from codesync_load.ledger import LedgerError, read_summary

    try:
        totals = read_summary(run_dir / "ledger.json")
    except LedgerError as err:
        return "no ledger", [f"the load left no readable ledger ({err}); see {run_dir / 'locust.out'}"]
    counts = {
        "429s": totals["rate_limited"],
        "errors": totals["errors"],
        "client failures": totals["failures"],
        "failed checks": totals["results_failed"],
    }
    traffic = (
        f"{run_dir.name}: http requests {totals['http_requests']}, websocket connections opened "
        f"{totals['connections_opened']}, yjs updates sent {totals['yjs_updates_sent']}; "
        + ", ".join(f"{what} {n}" for what, n in counts.items())
    )
    problems = [f"{what} {n}" for what, n in counts.items() if n]
    if not totals["complete"]:
        problems.append(f"ledger incomplete ({totals['incomplete_reason']})")
    if not totals["http_requests"]:
        problems.append("no HTTP request was sent")
    if code != 0:
        problems.append(f"Locust exited {code} (see {run_dir / 'locust.out'})")
    return traffic, problems
