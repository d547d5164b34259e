"""The live alert scenarios, as data: which stack, what traffic, which alert must arrive where.

    >>> SCENARIOS["HighRateLimitHits"].traffic, SCENARIOS["HighRateLimitHits"].stack
    ('search-flood', 'healthy')
    >>> STACKS["faulty"]
    ('error-burst=0.5', 'slow-route=2500')

Twin faults are fixed when the twin starts, so a scenario names a stack profile instead of
faults of its own: scenarios whose causes can share a twin share a stack (the fault set
error-burst=0.5 + slow-route=2500 raises both the 5xx ratio and p95; traffic-only causes
and ServiceDown run on a healthy twin). A `destructive` scenario (it stops a component)
leaves its stack unusable: the pool retires it afterwards.

Expected labels are the rule's own (severity from monitoring/alerts.yml) plus the job the
signal comes from; the receivers are derived from the Alertmanager route tree, not listed
here, so a routing change shows up as a failure of the right check.
"""

from __future__ import annotations

from dataclasses import dataclass

# Stack profile -> twin faults.
STACKS: dict[str, tuple[str, ...]] = {
    "healthy": (),
    "faulty": ("error-burst=0.5", "slow-route=2500"),
}


@dataclass(frozen=True)
class AlertScenario:
    """One checkable alert and the cause that pushes its signal over the threshold."""

    alert: str
    stack: str
    cause: str  # one line for the verdict: what crosses which threshold
    traffic: str | None = None  # a recipe of verify.live.traffic
    stop_component: str | None = None
    jobs: tuple[str, ...] = ("codesync-backend",)
    severity: str = "warning"  # as the monitoring guide sets it: critical for availability
    destructive: bool = False

    @property
    def check_name(self) -> str:
        return f"alert-fires-{self.alert}"


SCENARIOS: dict[str, AlertScenario] = {
    scenario.alert: scenario
    for scenario in (
        AlertScenario(
            "HighErrorRate",
            "faulty",
            "error-burst=0.5 answers half of /api with 500; GET /api/sessions at 10/s: ratio ~0.5 > 0.05",
            traffic="sessions-list",
        ),
        AlertScenario(
            "HighResponseTime",
            "faulty",
            "slow-route=2500 holds every autosave PUT 2.5 s; 4 writers: p95 in (1, 5] bucket ~4.8 s > 2 s",
            traffic="slow-autosave",
        ),
        AlertScenario(
            "HighRateLimitHits",
            "healthy",
            "one user searches at 25/s past its 30/min limit: ~25 rejections/s > 10/s",
            traffic="search-flood",
        ),
        AlertScenario(
            "WebSocketConnectionFailures",
            "healthy",
            "100 Yjs connections from one fresh address, then 2 refused (1008) per s > 0.1/s",
            traffic="yjs-over-limit",
            jobs=("codesync-yjs",),
        ),
        AlertScenario(
            "ServiceDown",
            "healthy",
            "the twin (API and Yjs processes) is stopped: up == 0 for both jobs",
            stop_component="twin",
            jobs=("codesync-backend", "codesync-yjs"),
            severity="critical",
            destructive=True,
        ),
    )
}

# The healthy baseline: the Locust profile of a normal working day (inside every limit),
# compressed to a full rule window, on a healthy twin.
HEALTHY_PROFILE = "baseline"
HEALTHY_CHECK = "alerts-silent-when-healthy"
# Host-resource alerts measure the machine the stack shares with everything else (CPU of a
# busy CI runner, its disk), not the target: reported by the healthy check, never failed on.
HOST_ALERTS = frozenset({"HighCPUUsage", "HighMemoryUsage", "LowDiskSpace"})
