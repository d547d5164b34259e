"""The alert-delivery-* checks against real Prometheus + Alertmanager processes and a real twin.

A stack whose every link works passes all four. The broken stack breaks each link once: its
Prometheus scrapes the twin with a literal ${METRICS_TOKEN} (never expanded: a wrong bearer, 403, target down),
its Alertmanager's webhook points at a loopback URL answering 404, one route ends at a receiver
without integration, and a second webhook on a non-loopback host is listed as not probed (and
never contacted). A Prometheus without an alerting section fails the first link.
"""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from codesync_load.processes import ManagedProcess
from codesync_load.stack.ports import free_port
from codesync_load.twin_process import TwinProcess
from tests.conftest import stopped_at_exit
from tests.verify._live import launch_prometheus
from verify.checks import REGISTRY, CheckResult
from verify.context import VerifyContext, VerifyOptions
from verify.prom import Prom

TOKEN = "delivery-test-token"
CHECKS = sorted(name for name in REGISTRY if name.startswith("alert-delivery-"))


class _Receiver(BaseHTTPRequestHandler):
    status = 200
    received: list[str] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        type(self).received.append(self.rfile.read(length).decode())
        self.send_response(self.status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _serve(status: int) -> tuple[ThreadingHTTPServer, type[_Receiver]]:
    handler = type("Handler", (_Receiver,), {"status": status, "received": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, handler


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def monitoring(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """start(prometheus_yml, alertmanager_yml or None) -> Prometheus URL; all stopped by PID."""
    with stopped_at_exit() as started:

        def start(prometheus_yml: str, alertmanager_yml: str | None, name: str) -> str:
            work = tmp_path / name
            work.mkdir()
            am_port = free_port()
            if alertmanager_yml is not None:
                (work / "am.yml").write_text(alertmanager_yml)
                am = ManagedProcess.start(
                    [
                        "prometheus-alertmanager",
                        f"--config.file={work / 'am.yml'}",
                        f"--storage.path={work / 'am-data'}",
                        f"--web.listen-address=127.0.0.1:{am_port}",
                        "--cluster.listen-address=",
                    ],
                    name="alertmanager",
                    log_path=work / "am.log",
                )
                started.append(am)
                am.wait_until(lambda: _ready(f"http://127.0.0.1:{am_port}/-/ready"), 30, "ready")
            (work / "prom.yml").write_text(prometheus_yml.replace("AM_PORT", str(am_port)))
            live = launch_prometheus(work, work / "prom.yml")
            started.append(live.process)
            prom, url = live.process, live.url
            prom.wait_until(lambda: live.prom.scalar('count(up{job="codesync-backend"})') == 1.0, 30, "a first scrape")
            if alertmanager_yml is not None:
                prom.wait_until(lambda: bool(_active(url)), 30, "its Alertmanager discovered")
            return url

        yield start


def _active(url: str) -> list:
    import json

    with urllib.request.urlopen(url + "/api/v1/alertmanagers", timeout=5) as response:
        return json.loads(response.read())["data"]["activeAlertmanagers"]


def prometheus_yml(twin: TwinProcess, credentials: str, alerting: bool = True) -> str:
    alerting_block = "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:AM_PORT']\n"
    return (
        "global:\n  scrape_interval: 1s\n"
        + (alerting_block if alerting else "")
        + "scrape_configs:\n  - job_name: codesync-backend\n    authorization:\n"
        + f"      type: Bearer\n      credentials: '{credentials}'\n"
        + f"    static_configs:\n      - targets: ['127.0.0.1:{twin.api_port}']\n"
    )


def alertmanager_yml(webhook: str, extra_route: str = "", extra_receivers: str = "") -> str:
    return (
        "route:\n  receiver: harness\n  routes:\n    - matchers: ['severity=\"critical\"']\n      receiver: harness\n"
        + extra_route
        + f"receivers:\n  - name: harness\n    webhook_configs:\n      - url: '{webhook}'\n"
        + extra_receivers
    )


def run_all(url: str) -> dict[str, CheckResult]:
    ctx = VerifyContext(VerifyOptions(prometheus_url=url))
    results = {name: REGISTRY[name].run(ctx) for name in CHECKS}
    for result in results.values():
        assert result.verdict != "error", result.render()
    return results


def test_the_four_links_are_named(twin_factory) -> None:
    assert CHECKS == [
        "alert-delivery-prometheus-has-alertmanager",
        "alert-delivery-routes-end-at-integrations",
        "alert-delivery-scrape-authenticates",
        "alert-delivery-webhooks-answer",
    ]


def test_a_stack_whose_links_all_work_passes(twin_factory, monitoring) -> None:
    twin = twin_factory(env={"METRICS_TOKEN": TOKEN})
    server, handler = _serve(200)
    try:
        url = monitoring(
            prometheus_yml(twin, TOKEN),
            alertmanager_yml(f"http://127.0.0.1:{server.server_address[1]}/alerts"),
            "healthy",
        )
        results = run_all(url)
    finally:
        server.shutdown()
    for result in results.values():
        assert result.verdict == "pass", result.render()
    assert len(handler.received) == 1 and "CodeSyncLoadDeliveryProbe" in handler.received[0]
    assert results["alert-delivery-routes-end-at-integrations"].summary.startswith("all 2 routes end at")


def test_a_stack_with_each_link_broken_fails_each_check(twin_factory, monitoring) -> None:
    twin = twin_factory(env={"METRICS_TOKEN": TOKEN})
    server, handler = _serve(404)
    try:
        url = monitoring(
            prometheus_yml(twin, "${METRICS_TOKEN}"),
            alertmanager_yml(
                f"http://127.0.0.1:{server.server_address[1]}/no-such-hook",
                extra_route="    - matchers: ['severity=\"info\"']\n      receiver: void\n",
                extra_receivers="  - name: void\n  - name: remote\n    webhook_configs:\n"
                "      - url: 'http://alerts.example.invalid/hook'\n",
            ),
            "broken",
        )
        client = Prom(url)
        deadline_ok = client.scalar('up{job="codesync-backend"}')
        results = run_all(url)
    finally:
        server.shutdown()
    assert deadline_ok == 0.0  # the literal ${METRICS_TOKEN} was sent as is: refused, target down
    assert results["alert-delivery-prometheus-has-alertmanager"].verdict == "pass"
    scrape = results["alert-delivery-scrape-authenticates"]
    assert scrape.verdict == "fail", scrape.render()
    assert scrape.summary.startswith("scrape credentials do not authenticate")
    # A wrong bearer is 403 by the contract (no header at all would be 401).
    assert "job codesync-backend is down: server returned HTTP status 403 Forbidden" in scrape.summary
    routes = results["alert-delivery-routes-end-at-integrations"]
    assert routes.verdict == "fail", routes.render()
    assert "ends at receiver 'void', which has no integration" in routes.summary
    hooks = results["alert-delivery-webhooks-answer"]
    assert hooks.verdict == "fail", hooks.render()
    assert f"webhook http://127.0.0.1:{server.server_address[1]}/no-such-hook answered 404" in hooks.summary
    rows = {row[1]: row for row in hooks.evidence.rows}
    assert rows["http://alerts.example.invalid/hook"][2].startswith("not probed")
    assert len(handler.received) == 1  # the 404 receiver got exactly the one test notification


def test_a_prometheus_without_an_alertmanager_fails_the_first_link(twin_factory, monitoring) -> None:
    twin = twin_factory(env={"METRICS_TOKEN": TOKEN})
    url = monitoring(prometheus_yml(twin, TOKEN, alerting=False), None, "no-am")
    results = run_all(url)
    first = results["alert-delivery-prometheus-has-alertmanager"]
    assert first.verdict == "fail", first.render()
    assert "has no active Alertmanager" in first.summary
    # The links behind it cannot be judged without an Alertmanager: skipped with the reason.
    assert results["alert-delivery-routes-end-at-integrations"].verdict == "skip"
