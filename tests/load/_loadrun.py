"""Test helpers: run Locust as a child process (never in the pytest process), read /metrics.

    >>> result = run_locust(locust_argv(twin, run_dir, "--profile", "smoke"), timeout=90)
    >>> result.code, result.output
    >>> before = scrape(twin.api_url); ...; delta(before, after, "codesync_http_requests_total")
    >>> own = run_on_own_twin(work, "--profile", "stress", timeout=150, settle=True)
    >>> reconcile(Ledger.read(own.run_dir / "ledger.json"), *own.metrics)

Locust monkey-patches the process that imports it (gevent), which breaks pytest; every run
here is a subprocess in its own process group, bounded by a timeout and stopped by PID.
`total`, `delta` and the parsing behind `scrape` are codesync_load.exposition's, and
`wait_for` is tests.twin._http's, so the load and twin tests count and wait the same way.
`run_on_own_twin` is a whole run on a twin started for it alone (tests.twin._http's
isolated_twin), so a test module can run several at once from threads: each run's counts
are its twin's alone, and the twin is stopped by PID when the run ends, pass or fail.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codesync_load import exposition
from codesync_load.exposition import Samples as Samples
from codesync_load.exposition import delta as delta
from codesync_load.exposition import total as total
from codesync_load.processes import ManagedProcess
from tests.twin import _http

REPO = Path(__file__).resolve().parents[2]
LOADTESTS = REPO / "loadtests"


@dataclass
class Finished:
    code: int | None
    output: str
    seconds: float


@dataclass
class OwnTwinRun:
    """A run on a twin of its own: how Locust ended, where it wrote, and with `settle=True`
    the twin's /metrics as `reconcile` takes them: (api before, after), (yjs before, after).
    """

    result: Finished
    run_dir: Path
    metrics: tuple[tuple[Samples, Samples], tuple[Samples, Samples]] | None


def locust_argv(twin: Any, run_dir: Path, *extra: str) -> list[str]:
    """`locust -f loadtests --headless` against a twin, writing into `run_dir`."""
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOADTESTS),
        "--headless",
        "--only-summary",
        "--host",
        twin.api_url,
        "--yjs-url",
        twin.yjs_url,
        "--run-dir",
        str(run_dir),
        *extra,
    ]


def start(argv: list[str], log: Path, name: str = "locust") -> ManagedProcess:
    env = dict(os.environ)
    env.pop("CODESYNC_DURATION_SCALE", None)
    env["PYTHONUNBUFFERED"] = "1"
    return ManagedProcess.start(argv, name=name, log_path=log, env=env, cwd=REPO)


def wait_exit(proc: ManagedProcess, timeout: float) -> Finished:
    """Wait for the process to end by itself; stop it by PID (and fail) past `timeout`."""
    started = time.monotonic()
    deadline = started + timeout
    while proc.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    overran = proc.alive()
    code = proc.stop(grace=10)
    output = proc.log_path.read_text(errors="replace") if proc.log_path else ""
    if overran:
        raise AssertionError(f"{proc.name} did not finish within {timeout} s; output tail:\n{output[-3000:]}")
    return Finished(code, output, time.monotonic() - started)


def run_locust(argv: list[str], log: Path, timeout: float = 120.0) -> Finished:
    proc = start(argv, log)
    try:
        return wait_exit(proc, timeout)
    finally:
        proc.stop(grace=5)


def run_on_own_twin(work: Path, *args: str, timeout: float, settle: bool = False) -> OwnTwinRun:
    """`locust_argv(twin, work / "run", *args)` against a twin started in `work` for this run only.

    The twin is the `twin` fixture's kind (isolated_twin: embedded mode, bcrypt cost 4). With
    `settle`, the twin is scraped again once every connection the run opened is closed.
    """
    with _http.isolated_twin(work, "twin") as twin:
        api0, yjs0 = scrape(twin.api_url), scrape(twin.yjs_url)
        run_dir = work / "run"
        result = run_locust(locust_argv(twin, run_dir, *args), work / "locust.out", timeout)
        if not settle:
            return OwnTwinRun(result, run_dir, None)
        api1, yjs1 = settled(twin)
    return OwnTwinRun(result, run_dir, ((api0, api1), (yjs0, yjs1)))


def settled(twin: Any) -> tuple[Samples, Samples]:
    """Scrapes of both ports once every WebSocket the run opened is closed on the server."""

    def quiet() -> tuple[Samples, Samples] | None:
        api, yjs = scrape(twin.api_url), scrape(twin.yjs_url)
        active = [v for (n, _), v in {**api, **yjs}.items() if n == "codesync_websocket_connections_active"]
        return (api, yjs) if not any(active) else None

    return wait_for(quiet, 10, "all WebSocket connections closed on the twin")


def scrape(base_url: str, token: str | None = None) -> Samples:
    """Every sample of base_url/metrics by (name, labels); a ws:// base is scraped over http://."""
    return exposition.scrape(base_url.replace("ws://", "http://").rstrip("/") + "/metrics", token)


def label_values(samples: Samples, name: str, label: str) -> set[str]:
    return {dict(lbls)[label] for (n, lbls) in samples if n == name and label in dict(lbls)}


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """tests.twin._http.wait_for polling every 0.1 s (a load run moves slower than one request)."""
    return _http.wait_for(condition, timeout=timeout, interval=0.1, what=what)


def reconcile(ledger: Any, api: tuple[Samples, Samples], yjs: tuple[Samples, Samples]) -> list[str]:
    """Every place where the ledger and the twin's metric deltas disagree (empty = exact).

    The twin is the honest reference: what the load generator says it sent must be exactly
    what the server counted, family by family.
    """
    problems: list[str] = []

    def check(what: str, ledger_value: float, server_value: float) -> None:
        if ledger_value != server_value:
            problems.append(f"{what}: ledger {ledger_value:g} != twin {server_value:g}")

    a0, a1 = api
    y0, y1 = yjs
    http = "codesync_http_requests_total"
    for (method, route, status), count in ledger.entries("http"):
        if status == 0:
            continue  # no response: the server never counted it
        check(
            f"http {method} {route} {status}",
            count,
            delta(a0, a1, http, method=method, route=route, status_code=str(status)),
        )
    check("http total", ledger.total("http") - ledger.total("http", status=0), delta(a0, a1, http))
    for (channel, code), count in ledger.entries("error"):
        if channel == "http" and code not in ("TRANSPORT",):
            check(f"errors {code}", count, delta(a0, a1, "codesync_errors_total", code=code))
    ws_total = "codesync_websocket_connections_total"
    check(
        "socketio connections", ledger.get("connection", "socketio", "opened"), delta(a0, a1, ws_total, type="socketio")
    )
    check("yjs connections", ledger.get("connection", "yjs", "opened"), delta(y0, y1, ws_total, type="yjs"))
    msgs = "codesync_websocket_messages_total"
    yjs_sent = ledger.total("message", channel="yjs", direction="sent")
    check("yjs inbound frames", yjs_sent, delta(y0, y1, msgs, type="yjs", direction="inbound"))
    joins = ledger.get("message", "socketio", "session:join", "sent") + ledger.get(
        "message", "socketio", "session:leave", "sent"
    )
    check("socketio inbound join/leave", joins, delta(a0, a1, msgs, type="socketio", direction="inbound"))
    chats = ledger.get("message", "socketio", "chat:message:send", "sent")
    check("socketio outbound chat broadcasts", chats, delta(a0, a1, msgs, type="socketio", direction="outbound"))
    created, deleted = ledger.get("session", "created"), ledger.get("session", "deleted")
    check("sessions active", created - deleted, delta(a0, a1, "codesync_sessions_active"))
    check(
        "API rate-limit hits",
        ledger.get("rate_limited", "files") + ledger.get("rate_limited", "search"),
        delta(a0, a1, "codesync_rate_limit_hits_total", type="API"),
    )
    hits = "codesync_rate_limit_hits_total"
    check("Yjs rate-limit hits", ledger.get("rate_limited", "yjs"), delta(y0, y1, hits, type="WS"))
    check("Socket.IO rate-limit hits", ledger.get("rate_limited", "socketio"), delta(a0, a1, hits, type="WS"))
    check("yjs persisted updates", ledger.get("yjs_update", "sent"), delta(y0, y1, "codesync_yjs_operations_total"))
    return problems
