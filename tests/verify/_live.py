"""A real Prometheus scraping a real twin, and a small known traffic recorded in a ledger.

    >>> prom = start_prometheus(tmp_path, {"codesync-backend": twin.api_url, "codesync-yjs": ...})
    >>> expected = drive_known_traffic(twin.api_url, prom.url, run_dir)   # 37 HTTP requests, ...
    >>> prom.stop()

The tests of the verifier need ground truth they fully control: this module sends exactly
the traffic it says (and records it with the project's own Recorder into the project's own
Ledger), and waits on Prometheus (conditions polled with a deadline, never fixed sleeps)
so that every gauge level the checks look for has really been scraped.
"""

from __future__ import annotations

import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from codesync_load.ledger import Ledger
from codesync_load.processes import ManagedProcess
from codesync_load.stack.ports import free_port
from scenarios.clients.rest import ApiResult, RestClient
from scenarios.clients.socketio import SocketIOClient
from scenarios.recording import Recorder
from verify.prom import Prom

SCRAPE_S = 1.0
HTTP_REQUESTS = 37


@dataclass
class LiveProm:
    url: str
    process: ManagedProcess
    prom: Prom

    def stop(self) -> None:
        self.process.stop()


def start_prometheus(work_dir: Path, jobs: dict[str, str], extra: str = "") -> LiveProm:
    """Prometheus scraping each job's `host:port` every second, stopped by the caller (by PID).
    `extra` is appended to scrape_configs as it is (YAML list items, indented two spaces)."""
    config = work_dir / "prometheus.yml"
    lines = [
        "global:",
        f"  scrape_interval: {SCRAPE_S:g}s",
        f"  evaluation_interval: {SCRAPE_S:g}s",
        "scrape_configs:",
    ]
    for job, address in jobs.items():
        lines += [f"  - job_name: {job}", "    static_configs:", f"      - targets: ['{address}']"]
    config.write_text("\n".join(lines) + "\n" + extra)
    live = launch_prometheus(work_dir, config)
    try:
        for job in jobs:
            live.process.wait_until(
                lambda job=job: live.prom.scalar(f'up{{job="{job}"}}') == 1.0, 30, f"a scrape of {job}"
            )
    except BaseException:
        live.stop()
        raise
    return live


def launch_prometheus(work_dir: Path, config: Path) -> LiveProm:
    """A real Prometheus with `config` (data and log under work_dir) on a free loopback port,
    ready; the one way the tests start one by hand. Stopped by the caller (by PID)."""
    port = free_port()
    argv = [
        "prometheus",
        f"--config.file={config}",
        f"--storage.tsdb.path={work_dir / 'prom-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
    ]
    proc = ManagedProcess.start(argv, name="prometheus", log_path=work_dir / "prometheus.log")
    url = f"http://127.0.0.1:{port}"
    try:
        proc.wait_until(lambda: urllib.request.urlopen(f"{url}/-/ready", timeout=1).status == 200, 30, "ready")
    except BaseException:
        proc.stop()
        raise
    return LiveProm(url, proc, Prom(url))


def wait_for(prom: Prom, expr: str, value: float, timeout: float = 15.0) -> None:
    """Until Prometheus' newest sample of `expr` equals `value` (it has scraped that state)."""
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = prom.scalar(expr)
        if seen == value:
            return
        time.sleep(0.1)
    raise AssertionError(f"Prometheus never showed {expr} == {value} within {timeout:g}s (last: {seen})")


def wait_for_next_scrape(prom: Prom, job: str, timeout: float = 10.0) -> None:
    """Until `job` has been scraped after now."""
    prom.wait_for_scrape_after(job, time.time(), timeout, interval=SCRAPE_S)


@dataclass
class KnownTraffic:
    run_dir: Path
    ledger: Ledger
    session_kept: str
    session_deleted: str


def drive_known_traffic(api_url: str, prom: Prom, run_dir: Path) -> KnownTraffic:
    """Exactly 37 HTTP requests, 2 sessions created and 1 deleted, one Socket.IO connection
    (join + one chat) held until scraped, 31 searches of which the last is refused (429),
    spread over several scrapes: all recorded in the ledger at run_dir."""
    run_dir.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(meta={"profile": "verify-test", "prometheus_url": prom.url})
    recorder = Recorder(ledger)
    wait_for_next_scrape(prom, "codesync-backend")
    ledger.phase_start("steady")

    def latency(result: ApiResult) -> None:
        if result.status:
            ledger.sample("http_s", result.elapsed)

    api = RestClient(api_url, observers=(recorder.http, latency))
    try:
        base_sessions = prom.scalar('sum(codesync_sessions_active{job="codesync-backend"})') or 0.0
        email = f"verify-{uuid.uuid4().hex[:8]}@example.test"
        api.health().raise_for_error()  # 1
        api.register(email, "Secret123", "Verify Tester").raise_for_error()  # 2
        kept = api.create_session("verify kept").raise_for_error().data["session"]  # 3
        recorder.session("created")
        gone = api.create_session("verify deleted").raise_for_error().data["session"]  # 4
        recorder.session("created")
        api.list_sessions().raise_for_error()  # 5
        # Searches are paced over several scrapes, so rate()-based panels see a run, not a blip.
        statuses = [api.search(kept["id"], "needle").status for _ in range(8)]  # 6..13
        wait_for(prom, 'sum(codesync_sessions_active{job="codesync-backend"})', base_sessions + 2)
        api.delete_session(gone["id"]).raise_for_error()  # 14
        recorder.session("deleted")

        sio = SocketIOClient(api_url, api.token, observers=(recorder.socketio_event,))
        sio.connect()
        recorder.connection("socketio", "opened")
        try:
            sio.join(kept["id"])
            recorder.participant(kept["id"], "joined")
            sio.chat(kept["id"], "hello from the verifier")
            wait_for(prom, 'sum(codesync_websocket_connections_active{job="codesync-backend", type="socketio"})', 1.0)
        finally:
            sio.disconnect()
            recorder.connection("socketio", "closed")
            recorder.participant(kept["id"], "left")
        for batch in (8, 8, 7):  # 15..37: the 31st search of the window is refused (limit 30)
            statuses += [api.search(kept["id"], "needle").status for _ in range(batch)]
            wait_for_next_scrape(prom, "codesync-backend")
        assert statuses.count(429) == 1 and statuses[-1] == 429, statuses
    finally:
        api.close()
    ledger.phase_end()
    ledger.write(run_dir / "ledger.json", complete=True)
    total = sum(count for (_m, _r, status), count in ledger.entries("http") if status)
    assert total == HTTP_REQUESTS, f"the test sent {total} requests, not {HTTP_REQUESTS}"
    return KnownTraffic(run_dir, ledger, kept["id"], gone["id"])
