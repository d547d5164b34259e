"""monitoring/alertmanager.yml: valid for amtool, routed as the guide says, and observable by
the harness (every route also posts to the harness webhook, named by its receiver).

    $ .venv/bin/pytest tests/monitoring/test_alertmanager_config.py

The last tests run a real Alertmanager on a free loopback port with the placeholder webhook
URL pointed at a recorder in this process, post alerts to its API and watch what arrives.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from codesync_load.processes import ManagedProcess
from tests.monitoring._files import MONITORING, alert_rules, load_yaml, require_tool, run_tool

CONFIG = MONITORING / "alertmanager.yml"
HARNESS_URL = "http://127.0.0.1:9099/alerts"
ROUTE_RECEIVER = {"critical": "critical-immediate", "warning": "warning-batched", "info": "info-webhook"}


def route_receivers(*labels: str) -> list[str]:
    """The receivers amtool says an alert with `labels` (name=value) is delivered to."""
    result = run_tool(["amtool", "config", "routes", "test", f"--config.file={CONFIG}", *labels])
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().split(",")


def test_amtool_check_config_accepts_it() -> None:
    result = run_tool(["amtool", "check-config", str(CONFIG)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    assert " - 4 receivers" in result.stdout
    assert " - 1 inhibit rules" in result.stdout


@pytest.mark.parametrize("severity", ["critical", "warning", "info"])
def test_each_severity_takes_its_route_and_the_harness_copy(severity: str) -> None:
    assert route_receivers("alertname=Probe", f"severity={severity}") == ["harness", ROUTE_RECEIVER[severity]]


def test_an_alert_without_severity_reaches_only_the_harness() -> None:
    assert route_receivers("alertname=Probe") == ["harness"]


def test_every_rule_of_alerts_yml_routes_by_its_severity() -> None:
    for rule in alert_rules(MONITORING / "alerts.yml"):
        severity = rule["labels"]["severity"]
        receivers = route_receivers(f"alertname={rule['alert']}", f"severity={severity}")
        assert receivers == ["harness", ROUTE_RECEIVER[severity]], rule["alert"]


def test_route_timing_grouping_and_inhibition_are_the_guides() -> None:
    config = load_yaml(CONFIG)
    route = config["route"]
    assert route["group_by"] == ["alertname", "severity"]
    by_receiver = {child["receiver"]: child for child in route["routes"]}
    assert route["routes"][0] == {"receiver": "harness", "group_wait": "0s", "group_interval": "1m", "continue": True}
    critical = by_receiver["critical-immediate"]
    assert critical["continue"] is True
    assert critical["group_wait"] in {"0s", "5s", "10s"}
    warning = by_receiver["warning-batched"]
    assert (warning["group_wait"], warning["group_interval"]) == ("30s", "5m")
    assert config["inhibit_rules"] == [
        {
            "source_matchers": ['severity="critical"'],
            "target_matchers": ['severity="warning"'],
            "equal": ["alertname", "instance"],
        }
    ]


def test_critical_goes_to_email_slack_and_pagerduty() -> None:
    receivers = {r["name"]: r for r in load_yaml(CONFIG)["receivers"]}
    critical = receivers["critical-immediate"]
    for kind in ("email_configs", "slack_configs", "pagerduty_configs", "webhook_configs"):
        assert critical.get(kind), f"critical-immediate lacks {kind}"


def test_every_receiver_posts_to_the_harness_and_nothing_leaves_loopback() -> None:
    config = load_yaml(CONFIG)
    for receiver in config["receivers"]:
        assert HARNESS_URL in [w["url"] for w in receiver.get("webhook_configs", [])], receiver["name"]
        for kind, entries in receiver.items():
            for entry in entries if isinstance(entries, list) else []:
                for key in ("url", "api_url", "smarthost"):
                    if key in entry:
                        value = entry[key]
                        host = urlsplit(value).hostname if "://" in value else value.rsplit(":", 1)[0]
                        assert host == "127.0.0.1", f"{receiver['name']} {kind}.{key} = {value}"
    assert config["global"]["smtp_smarthost"].startswith("127.0.0.1:")


# ------------------------------------------------------------------ a live Alertmanager


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Recorder:
    """The harness webhook: records every Alertmanager notification posted to it."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                recorder.payloads.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture(scope="module")
def live_alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Recorder]]:
    """A real Alertmanager with this file's config; the harness URL points at a Recorder."""
    binary = require_tool("prometheus-alertmanager")
    state = tmp_path_factory.mktemp("alertmanager")
    recorder = Recorder()
    text = CONFIG.read_text()
    assert HARNESS_URL in text
    (state / "alertmanager.yml").write_text(text.replace(HARNESS_URL, recorder.url))
    port = free_port()
    proc = ManagedProcess.start(
        [
            binary,
            f"--config.file={state / 'alertmanager.yml'}",
            f"--storage.path={state / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        name="alertmanager",
        log_path=state / "alertmanager.log",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        proc.wait_until(lambda: requests.get(f"{url}/-/ready", timeout=1).ok, timeout=20, what="/-/ready")
        yield url, recorder
    finally:
        proc.stop()
        recorder.close()


def post_alerts(url: str, *label_sets: dict[str, str]) -> None:
    body = [{"labels": labels, "annotations": {"summary": "test"}} for labels in label_sets]
    response = requests.post(f"{url}/api/v2/alerts", json=body, timeout=5)
    assert response.status_code == 200, response.text


def test_live_critical_alert_reaches_the_harness_by_both_receivers(live_alertmanager: tuple[str, Recorder]) -> None:
    url, recorder = live_alertmanager
    labels = {"alertname": "ServiceDown", "severity": "critical", "job": "codesync-backend", "instance": "api:4000"}
    post_alerts(url, labels)

    def receivers_seen() -> set[str]:
        return {p["receiver"] for p in recorder.payloads if p["commonLabels"].get("alertname") == "ServiceDown"}

    wait_for(lambda: receivers_seen() >= {"harness", "critical-immediate"}, 20, "both webhook deliveries")
    assert receivers_seen() == {"harness", "critical-immediate"}
    payload = next(p for p in recorder.payloads if p["receiver"] == "critical-immediate")
    assert payload["groupLabels"] == {"alertname": "ServiceDown", "severity": "critical"}
    assert payload["alerts"][0]["labels"] == labels


def test_live_critical_inhibits_the_warning_of_the_same_alert_and_instance(
    live_alertmanager: tuple[str, Recorder],
) -> None:
    url, _ = live_alertmanager
    base = {"alertname": "HighErrorRate", "job": "codesync-backend"}
    post_alerts(
        url,
        {**base, "severity": "critical", "instance": "api-1:4000"},
        {**base, "severity": "warning", "instance": "api-1:4000"},
        {**base, "severity": "warning", "instance": "api-2:4000"},
    )

    def states() -> dict[tuple[str, str], str]:
        alerts = requests.get(f"{url}/api/v2/alerts", params={"filter": 'alertname="HighErrorRate"'}, timeout=5).json()
        return {(a["labels"]["severity"], a["labels"]["instance"]): a["status"]["state"] for a in alerts}

    wait_for(lambda: states().get(("warning", "api-1:4000")) == "suppressed", 20, "the inhibited warning")
    assert states() == {
        ("critical", "api-1:4000"): "active",
        ("warning", "api-1:4000"): "suppressed",
        ("warning", "api-2:4000"): "active",
    }
    groups = requests.get(f"{url}/api/v2/alerts/groups", timeout=5).json()
    receivers = {g["receiver"]["name"] for g in groups if g["labels"].get("alertname") == "HighErrorRate"}
    assert receivers == {"harness", "critical-immediate", "warning-batched"}
