"""The Locust side of the load-generator benchmark: one user class per measure, one process.

    $ CODESYNC_BENCH='{"mode": "throughput", "out": "r.json", ...}' \\
        locust -f benchmarks/_locust_bench.py --headless -u 100 -r 100 LeanEditorUser

Started by load_generator.py as a subprocess (Locust must be imported first in its process:
it monkey-patches with gevent). A coordinator greenlet, started with the test, waits until
every user is ready, measures from the clients' own counters (and /proc/self/status VmRSS),
writes one JSON object to `out` and stops the runner; Locust's `-t` is only a safety net.

Every Yjs connection here is opened the way loadtests/_base.py `open_yjs` opens the users'
ones: the process-wide EditRegistry (latency samples), a user name and file for awareness, and
two observers, `scenarios.recording.Recorder.yjs_event` into a real Ledger and
`locust_events.yjs_observer` adding every latency sample to Locust's statistics (in batches).
So the rows price what `locust -f loadtests` runs, bookkeeping included, not a bare protocol
client; the result says how many samples the ledger and Locust's statistics hold (equal).

User classes:
- `LeanEditorUser`: the Locust users' `LeanYjsConnection` (a hub watcher reads, no thread),
  typing near the start at `constant_pacing(interval)`.
- `LeanBareEditorUser`: the same typing on a bare LeanYjsConnection (no latency sampling,
  no observers): what the bookkeeping above costs, by difference.
- `YjsClientEditorUser`: the same on the project's YjsClient (websockets.sync, a reader
  thread that is a greenlet here): what the users ran before they switched.
- `LeanViewerUser` / `YjsClientViewerUser`: one synced idle connection per user.
- `LeanViewerPoolUser`: one user holding `pool` idle connections (what a viewer crowd costs
  when a user stands for a group of tabs rather than one).
- `CodeSyncHealthUser`: RestClient on LocustHttpTransport, GET /health, reported through
  `rest_observer`; `PlainHealthUser`: a plain FastHttpUser on the same endpoint.
"""

from __future__ import annotations

# ruff: noqa: I001  (Locust first: its gevent patching must precede any ssl/urllib3 import)
import locust
from locust import FastHttpUser, User, constant, constant_pacing, events, task

import contextlib
import cProfile
import gc
import json
import os
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gevent
import gevent.pool

from codesync_load.ledger import Ledger
from scenarios.clients.locust_events import flush_propagation, rest_observer, yjs_observer
from scenarios.clients.locust_transport import LocustHttpTransport
from scenarios.clients.rest import RestClient
from scenarios.clients.yjs import YjsClient
from scenarios.clients.yjs_lean import LeanYjsConnection
from scenarios.recording import Recorder

CFG: dict[str, Any] = json.loads(os.environ.get("CODESYNC_BENCH", "{}"))
CONNECTIONS: list[Any] = []  # every YjsClient / LeanYjsConnection that synced
FAILURES: list[str] = []
REQUESTS = {"ok": 0, "failed": 0}
_NEXT_INDEX = iter(range(10**9))
_RNG = random.Random(CFG.get("seed", 1))
RECORDER = Recorder(Ledger())  # the users' ledger bookkeeping, as loadtests' runtime keeps it


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def source_address(index: int) -> str | None:
    """127.<source_base>.x.y, `per_address` connections each (as the raw client spreads them)."""
    base = CFG.get("source_base")
    if base is None:
        return None
    slot = index // CFG["per_address"]
    return f"127.{base}.{slot // 254}.{slot % 254 + 1}"


def document(index: int) -> str:
    return f"{CFG['doc_prefix']}-{index // CFG['per_doc']}"


def user_connection(cls: Any, host: str, index: int, environment: Any) -> Any:
    """A YjsClient or LeanYjsConnection configured as loadtests/_base.py `open_yjs` does."""
    conn = cls(
        host,
        document(index),
        name=f"editor-{index}",
        file="src/main.py",
        source_address=source_address(index),
        observers=(RECORDER.yjs_event,),
    )
    conn.observe(yjs_observer(environment))
    return conn


def _note_failure(err: BaseException) -> None:
    if len(FAILURES) < 20:
        FAILURES.append(f"{type(err).__name__}: {err}")


# -- Yjs editors --------------------------------------------------------------------------------


class _ConnectionUser(User):
    """One synced connection per user; subclasses pick the connection and what the user does.

    Editors and viewers both derive from this, never from each other: Locust adds a base
    class's tasks to its subclass's, so a viewer made from an editor would also type.
    """

    abstract = True

    def open_connection(self, index: int) -> Any:
        raise NotImplementedError

    def on_start(self) -> None:
        index = next(_NEXT_INDEX)
        self.rng = random.Random(_RNG.random())
        self.conn = self.open_connection(index)
        try:
            self.conn.connect()
        except Exception as err:
            _note_failure(err)
            raise
        CONNECTIONS.append(self.conn)

    def on_stop(self) -> None:
        self.conn.close()


class _EditorUser(_ConnectionUser):
    """One editor typing near the start at the configured pacing."""

    abstract = True
    wait_time = constant_pacing(CFG.get("interval", 0.01))

    @task
    def type(self) -> None:
        self.conn.type_near_start(self.rng, max_length=CFG.get("max_length") or sys.maxsize)


class YjsClientEditorUser(_EditorUser):
    def open_connection(self, index: int) -> Any:
        return user_connection(YjsClient, self.host, index, self.environment)


class LeanEditorUser(_EditorUser):
    def open_connection(self, index: int) -> Any:
        return user_connection(LeanYjsConnection, self.host, index, self.environment)


class LeanBareEditorUser(_EditorUser):
    """The lean connection with no bookkeeping: no registry, no latency sampling, no observers."""

    def open_connection(self, index: int) -> Any:
        return LeanYjsConnection(
            self.host, document(index), registry=None, sample_latency=False, source_address=source_address(index)
        )


# -- idle viewers -------------------------------------------------------------------------------


class YjsClientViewerUser(_ConnectionUser):
    wait_time = constant(3600)
    open_connection = YjsClientEditorUser.open_connection

    @task
    def watch(self) -> None:  # a viewer never types; the reader greenlet does the work
        self.conn.raise_if_failed()


class LeanViewerUser(_ConnectionUser):
    wait_time = constant(3600)
    open_connection = LeanEditorUser.open_connection

    @task
    def watch(self) -> None:  # a viewer never types; the hub watcher does the work
        if self.conn.failure is not None:
            raise self.conn.failure


class LeanViewerPoolUser(User):
    """`pool` idle connections per user, opened `connect_concurrency` at a time."""

    wait_time = constant(3600)

    def on_start(self) -> None:
        size = CFG.get("pool", 100)
        indexes = [next(_NEXT_INDEX) for _ in range(size)]
        self.conns = [user_connection(LeanYjsConnection, self.host, i, self.environment) for i in indexes]

        def open_one(conn: LeanYjsConnection) -> None:
            try:
                conn.connect()
                CONNECTIONS.append(conn)
            except Exception as err:
                _note_failure(err)

        gevent.pool.Pool(CFG.get("connect_concurrency", 20)).map(open_one, self.conns)

    @task
    def hold(self) -> None:
        pass

    def on_stop(self) -> None:
        for conn in self.conns:
            conn.close()


# -- REST -------------------------------------------------------------------------------------


class CodeSyncHealthUser(User):
    wait_time = constant(0)

    def on_start(self) -> None:
        self.api = RestClient(self.host, LocustHttpTransport(), observers=(rest_observer(self.environment),))

    @task
    def health(self) -> None:
        self.api.health()

    def on_stop(self) -> None:
        self.api.transport.close()


class PlainHealthUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def health(self) -> None:
        self.client.get("/health")


@events.request.add_listener
def _count_request(exception: BaseException | None = None, **_: Any) -> None:
    REQUESTS["failed" if exception else "ok"] += 1


# -- the coordinator ----------------------------------------------------------------------------


def _yjs_totals() -> dict[str, int]:
    return {
        "sent": sum(c.updates_sent for c in CONNECTIONS),
        "applied": sum(c.updates_applied for c in CONNECTIONS),
        "echoes": sum(c.echoes_received for c in CONNECTIONS),
        "samples": sum(c.latency_count for c in CONNECTIONS),
    }


def _wait_ready(environment: Any, expected: int, timeout: float) -> bool:
    """Until `expected` connections synced (Yjs) or users are running (REST)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = len(CONNECTIONS) if CFG["mode"] != "rest" else environment.runner.user_count
        if ready >= expected:
            return True
        if CFG["mode"] != "rest" and len(CONNECTIONS) + len(FAILURES) >= expected and FAILURES:
            return False
        gevent.sleep(0.05)
    return False


@contextlib.contextmanager
def _profiled(path: str | None) -> Iterator[None]:
    """cProfile the measured window into `path` (CFG "profile"; for finding hot spots by hand)."""
    if not path:
        yield
        return
    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        profile.dump_stats(path)


def _measure(environment: Any, before: int) -> dict[str, Any]:
    mode = CFG["mode"]
    expected = CFG["expected"]
    if not _wait_ready(environment, expected, CFG.get("ready_timeout", 120)):
        ready = len(CONNECTIONS) if mode != "rest" else environment.runner.user_count
        return {"error": f"only {ready} of {expected} ready", "failures": FAILURES[:5]}
    if mode == "idle":
        gc.collect()
        after = rss_kb()
        gevent.sleep(CFG["hold"])
        held = sum(1 for c in CONNECTIONS if (c.failure is None and c.synced))
        return {
            "requested": expected,
            "synced": len(CONNECTIONS),
            "held": held,
            "rss_before_kb": before,
            "rss_after_kb": after,
            "kb_per_connection": (after - before) / max(len(CONNECTIONS), 1),
            "per_user": CFG.get("pool", 1),
            "pings_answered": sum(getattr(c, "pings_answered", 0) for c in CONNECTIONS),
            "updates_sent": sum(c.updates_sent for c in CONNECTIONS),  # idle: none
            "first_failure": FAILURES[0] if FAILURES else None,
        }
    gevent.sleep(CFG["warmup"])
    if mode == "rest":
        start, cpu0, t0 = dict(REQUESTS), time.process_time(), time.perf_counter()
        gevent.sleep(CFG["duration"])
        end, cpu1, t1 = dict(REQUESTS), time.process_time(), time.perf_counter()
        seconds = t1 - t0
        done = end["ok"] - start["ok"]
        return {
            "users": expected,
            "seconds": seconds,
            "requests": done,
            "failed": end["failed"] - start["failed"],
            "requests_per_s": done / seconds,
            "cpu_share": (cpu1 - cpu0) / seconds,
        }
    start, cpu0, t0 = _yjs_totals(), time.process_time(), time.perf_counter()
    with _profiled(CFG.get("profile")):
        gevent.sleep(CFG["duration"])
    end, cpu1, t1 = _yjs_totals(), time.process_time(), time.perf_counter()
    # Both counts since the start, read with no greenlet switch in between: they must be equal.
    flush_propagation(environment)
    ledger_total = len(RECORDER.ledger.samples("yjs_propagation_s"))
    locust_total = environment.stats.get("propagation", "YJS").num_requests
    seconds = t1 - t0
    return {
        "editors": expected,
        "seconds": seconds,
        "sent": end["sent"] - start["sent"],
        "applied": end["applied"] - start["applied"],
        "echoes": end["echoes"] - start["echoes"],
        "latency_samples": end["samples"] - start["samples"],
        "ledger_samples": ledger_total,  # since the start of the run, as the next
        "locust_samples": locust_total,
        "sent_per_s": (end["sent"] - start["sent"]) / seconds,
        "applied_per_s": (end["applied"] - start["applied"]) / seconds,
        "cpu_share": (cpu1 - cpu0) / seconds,
        "lost": sum(1 for c in CONNECTIONS if c.failure is not None),
    }


def _coordinate(environment: Any, before: int) -> None:
    try:
        result = _measure(environment, before)
    except Exception as err:  # the driver reports it as this measure's error
        result = {"error": f"{type(err).__name__}: {err}"}
    out = Path(CFG["out"])
    partial = out.with_suffix(".partial")
    partial.write_text(json.dumps(result))
    partial.replace(out)  # the driver polls for `out`: it must appear whole
    environment.runner.quit()


@events.test_start.add_listener
def _on_test_start(environment: Any, **_: Any) -> None:
    if CFG:
        gc.collect()
        gevent.spawn(_coordinate, environment, rss_kb())  # RSS taken now, before any user exists


assert locust  # the import above is for its side effect
