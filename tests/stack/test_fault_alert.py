"""A twin fault makes a compressed alert fire in Prometheus and reach the right receivers.

The twin answers every /api request with 500 (fault error-burst=1.0); HighErrorRate (warning,
compressed to a 10 s window and `for: 10s`) must fire, be grouped by Alertmanager and be
delivered to the harness copy route and to warning-batched, and nothing critical must fire.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from codesync_load.stack import promapi
from codesync_load.stack.local import LocalStack
from codesync_load.stack.webhook import alerts_delivered
from tests.stack._support import Traffic, wait_for


@pytest.fixture(scope="module")
def faulty_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    stack = LocalStack(
        state_dir=tmp_path_factory.mktemp("faulty-stack"),
        faults=["error-burst=1.0"],
        compress=30,
        scrape_interval="1s",
    )
    stack.up()
    try:
        yield stack
    finally:
        stack.down()


def test_error_burst_fires_high_error_rate_on_the_warning_route(faulty_stack: LocalStack) -> None:
    stack = faulty_stack
    assert not alerts_delivered(stack.alert_log, "HighErrorRate")

    def delivered_to() -> set[str]:
        receivers = {receiver for receiver, _ in alerts_delivered(stack.alert_log, "HighErrorRate")}
        return receivers if {"harness", "warning-batched"} <= receivers else set()

    with Traffic(f"{stack.api_url}/api/sessions") as traffic:
        firing = wait_for(lambda: promapi.firing_alerts(stack.prometheus_url, "HighErrorRate"), 60, "firing")
        receivers = wait_for(delivered_to, 30, "HighErrorRate delivered to harness and warning-batched")
    assert set(traffic.codes) == {500}  # the fault answered every request

    assert len(firing) == 1
    assert float(firing[0]["value"]) == 1.0  # 100 % of the responses were 5xx
    assert firing[0]["labels"] == {
        "alertname": "HighErrorRate",
        "job": "codesync-backend",
        "instance": urlsplit(stack.api_url).netloc,
        "severity": "warning",
    }
    assert receivers == {"harness", "warning-batched"}
    for _, alert in alerts_delivered(stack.alert_log, "HighErrorRate"):
        assert alert["labels"]["severity"] == "warning"
        assert alert["labels"]["job"] == "codesync-backend"
    groups = promapi.alertmanager_groups(stack.alertmanager_url)
    named = {
        g["receiver"]["name"] for g in groups if any(a["labels"]["alertname"] == "HighErrorRate" for a in g["alerts"])
    }
    assert named == {"harness", "warning-batched"}
    # A warning never takes the critical route.
    assert not [r for r, _ in alerts_delivered(stack.alert_log, "HighErrorRate") if r == "critical-immediate"]
