"""The uptime probe end to end: a real blackbox exporter scraped by a real Prometheus, probing
a real loopback socket whose /health we switch from 200 to 503 and back.

Uptime Kuma's rule (down only at the 3rd failed try in a row) is applied to the probe_success
samples Prometheus stored: the test asserts the transition happens at exactly the 3rd failed
try, and up again at the first success after.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from codesync_load.processes import ManagedProcess
from codesync_load.stack import blackbox
from codesync_load.stack.binaries import find_binaries
from codesync_load.stack.ports import HOST, accepts_connections, free_port
from codesync_load.uptime import Transition, transitions
from tests.verify._live import launch_prometheus
from verify.prom import Prom


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        body = b'{"status":"ok"}'
        self.send_response(type(self).status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def health_server() -> Iterator[tuple[str, type[_Health]]]:
    handler = type("Health", (_Health,), {"status": 200})
    server = http.server.ThreadingHTTPServer((HOST, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def probe_stack(tmp_path: Path, health_server: tuple[str, type[_Health]]) -> Iterator[tuple[Prom, type[_Health]]]:
    """Blackbox exporter + Prometheus scraping the health probe every 1 s (the guide's 60 s / 60)."""
    url, handler = health_server
    bins = find_binaries([blackbox.BINARY])
    bb_port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({"global": {"scrape_interval": "1s"}, "scrape_configs": []}))
    blackbox.add_jobs(config, blackbox.probe_jobs(url, None, f"{HOST}:{bb_port}", factor=60))
    procs = []
    try:
        bb = ManagedProcess.start(
            blackbox.argv(bins[blackbox.BINARY], blackbox.write_config(tmp_path), f"{HOST}:{bb_port}"),
            name="blackbox",
            log_path=tmp_path / "blackbox.log",
        )
        procs.append(bb)
        bb.wait_until(lambda: accepts_connections(bb_port), timeout=20, what="listening")
        live = launch_prometheus(tmp_path, config)
        procs.append(live.process)
        yield live.prom, handler
    finally:
        for proc in reversed(procs):
            proc.stop()


def _tries(prom: Prom, start: float, end: float) -> list[tuple[float, float]]:
    series = prom.scrapes(f'probe_success{{job="{blackbox.HEALTH_JOB}"}}', start, end)
    return list(series[0].points) if series else []


def _wait_tries(prom: Prom, start: float, count: int, value: float, timeout: float = 30.0) -> None:
    """Until `count` tries with `value` were stored after `start` (Prometheus' first scrape lags)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(1 for t, v in _tries(prom, start, time.time()) if t > start and v == value) >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"fewer than {count} tries with probe_success={value} in {timeout:g} s")


def test_probe_goes_down_at_the_third_failed_try_and_up_at_the_first_success(probe_stack) -> None:
    prom, handler = probe_stack
    began = time.time()
    _wait_tries(prom, began, 2, 1.0)
    broke = time.time()
    handler.status = 503
    _wait_tries(prom, broke, 4, 0.0)
    fixed = time.time()
    handler.status = 200
    _wait_tries(prom, fixed, 1, 1.0)
    points = _tries(prom, began - 1, time.time())
    durations = prom.scrapes(f'probe_duration_seconds{{job="{blackbox.HEALTH_JOB}"}}', began - 1, time.time())

    # the tries as stored: successes, then (after the switch) failures, then a success again
    failed = [t for t, v in points if v == 0.0]
    assert len(failed) >= 4 and all(broke < t for t in failed)
    first_back = min(t for t, v in points if v == 1.0 and t > failed[-1])
    assert transitions(points) == [
        Transition(points[0][0], "up"),
        Transition(failed[2], "down"),  # the 3rd failed try in a row, not the 1st or 2nd
        Transition(first_back, "up"),
    ]
    # two failed tries are not down (Uptime Kuma's retries)
    assert transitions([*points[: points.index((failed[1], 0.0)) + 1]])[-1].state == "up"
    # health latency is recorded per try
    assert durations and all(0 < v < 1.0 for _, v in durations[0].points)
