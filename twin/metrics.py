"""The twin's instrumentation, declared in its own code, one registry per process.

    >>> m = TwinMetrics("api", ActiveFaults())
    >>> m.http_response("GET", "/health", 200, 0.002)
    >>> m.exposition()          # bytes in the Prometheus text format

The API port and the Yjs port each serve their own registry, as CodeSync's two processes
do, so Prometheus scraping both never counts an event twice. Families are declared here
(DECLARATIONS: names, types, labels, buckets), as CodeSync declares its prom-client metrics
in its own code, and never read from the contract file the verifier checks against: the twin
and the contract (codesync_load/contract/backend.toml) are two independent witnesses, so a
wrong contract entry shows up against the twin (tests/twin/test_metric_declarations.py holds
the two against each other). The recording methods are the only place that knows which event
moves which family, and the only place metric faults act.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.process_collector import ProcessCollector

from twin.faults import ActiveFaults

# Canonical family names the recording methods use; the contract may rename them.
HTTP_REQUESTS = "codesync_http_requests_total"
HTTP_DURATION = "codesync_http_request_duration_seconds"
WS_ACTIVE = "codesync_websocket_connections_active"
WS_TOTAL = "codesync_websocket_connections_total"
WS_MESSAGES = "codesync_websocket_messages_total"
YJS_DOCUMENTS = "codesync_yjs_documents_active"
YJS_OPERATIONS = "codesync_yjs_operations_total"
YJS_SYNC = "codesync_yjs_sync_duration_seconds"
SESSIONS_ACTIVE = "codesync_sessions_active"
PARTICIPANTS = "codesync_session_participants"
RATE_LIMIT_HITS = "codesync_rate_limit_hits_total"
ERRORS = "codesync_errors_total"
DB_QUERIES = "codesync_db_queries_total"
DB_DURATION = "codesync_db_query_duration_seconds"

_DRIFTED_HTTP_LABELS = ("method", "path", "status")


@dataclass(frozen=True)
class Declared:
    """One metric family as the twin declares it (what prom-client's constructor takes in CodeSync).

    `process`: api, yjs or both. `collector`: exported by a collector (process_*), not built here.
    """

    name: str
    type: str
    labels: tuple[str, ...]
    process: str
    help: str
    buckets: tuple[float, ...] = ()
    collector: bool = False

    def exported_by(self, process: str) -> bool:
        return self.process in (process, "both")


DECLARATIONS: tuple[Declared, ...] = (
    Declared(
        HTTP_REQUESTS,
        "counter",
        ("method", "route", "status_code"),
        "api",
        "every HTTP response (route = Express route template such as /api/sessions/:id; /metrics itself "
        "is not counted)",
    ),
    Declared(
        HTTP_DURATION,
        "histogram",
        ("method", "route", "status_code"),
        "api",
        "every HTTP response",
        buckets=(0.001, 0.005, 0.015, 0.05, 0.1, 0.5, 1.0, 5.0),
    ),
    Declared(
        WS_ACTIVE,
        "gauge",
        ("type",),
        "both",
        "+1 on admit, -1 on close (socketio on the API, yjs on the Yjs server)",
    ),
    Declared(
        WS_TOTAL,
        "counter",
        ("type",),
        "both",
        "each admitted connection",
    ),
    Declared(
        WS_MESSAGES,
        "counter",
        ("type", "direction"),
        "both",
        "Socket.IO session:join/session:leave inbound; chat:message:new and message:reaction broadcasts "
        "outbound (one per broadcast); each inbound Yjs frame",
    ),
    Declared(
        YJS_DOCUMENTS,
        "gauge",
        (),
        "yjs",
        "documents loaded in the Yjs server",
    ),
    Declared(
        YJS_OPERATIONS,
        "counter",
        ("operation_type",),
        "yjs",
        "each persisted Yjs update: an inbound Update or SyncStep2 that changed the document (duplicates do not count)",
    ),
    Declared(
        YJS_SYNC,
        "histogram",
        (),
        "yjs",
        "each sync (a client's SyncStep1 answered with SyncStep2)",
        buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0),
    ),
    Declared(
        SESSIONS_ACTIVE,
        "gauge",
        (),
        "api",
        "+1 per created session, -1 per deleted",
    ),
    Declared(
        PARTICIPANTS,
        "gauge",
        ("session_id",),
        "api",
        "Socket.IO room size on join/leave/disconnect",
    ),
    Declared(
        RATE_LIMIT_HITS,
        "counter",
        ("type", "user_id"),
        "both",
        "each rejection by a rate limiter (API: files/search routes; WS: Socket.IO per user, Yjs per "
        "client IP with user_id = the IP)",
    ),
    Declared(
        ERRORS,
        "counter",
        ("type", "code"),
        "api",
        "each error answered by the error handler (code as in the envelope)",
    ),
    Declared(
        DB_QUERIES,
        "counter",
        ("operation", "model", "status"),
        "both",
        "each database query",
    ),
    Declared(
        DB_DURATION,
        "histogram",
        ("operation", "model"),
        "both",
        "each database query",
        buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0),
    ),
    Declared(
        "process_cpu_seconds_total",
        "counter",
        (),
        "both",
        "CPU time",
        collector=True,
    ),
    Declared(
        "process_resident_memory_bytes",
        "gauge",
        (),
        "both",
        "resident memory",
        collector=True,
    ),
    Declared(
        "process_heap_bytes",
        "gauge",
        (),
        "both",
        "heap size",
        collector=True,
    ),
    Declared(
        "process_open_fds",
        "gauge",
        (),
        "both",
        "open file descriptors",
        collector=True,
    ),
    Declared(
        "process_max_fds",
        "gauge",
        (),
        "both",
        "fd limit",
        collector=True,
    ),
    Declared(
        "process_start_time_seconds",
        "gauge",
        (),
        "both",
        "process start",
        collector=True,
    ),
)

# prom-client exports no *_created series; neither does the twin.
disable_created_metrics()


class _HeapCollector:
    """`process_heap_bytes`, as prom-client exports it: bytes the allocator has handed out.

    Read from glibc's mallinfo2 (in-use arena plus mmapped blocks); where it is missing the
    family is still exported, from the resident set, so the contract's series never vanishes.
    """

    def __init__(self) -> None:
        self._mallinfo2 = None
        libc_name = ctypes.util.find_library("c")
        if libc_name:
            libc = ctypes.CDLL(libc_name)
            if hasattr(libc, "mallinfo2"):

                class MallInfo2(ctypes.Structure):
                    _fields_ = [
                        (name, ctypes.c_size_t)
                        for name in (
                            "arena",
                            "ordblks",
                            "smblks",
                            "hblks",
                            "hblkhd",
                            "usmblks",
                            "fsmblks",
                            "uordblks",
                            "fordblks",
                            "keepcost",
                        )
                    ]

                libc.mallinfo2.restype = MallInfo2
                self._mallinfo2 = libc.mallinfo2

    def heap_bytes(self) -> float:
        if self._mallinfo2 is not None:
            info = self._mallinfo2()
            return float(info.uordblks + info.hblkhd)
        with open(f"/proc/{os.getpid()}/statm") as statm:
            return float(int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE"))

    def collect(self):
        family = GaugeMetricFamily("process_heap_bytes", "Process heap size in bytes.")
        family.add_metric([], self.heap_bytes())
        yield family


class TwinMetrics:
    """One process's families and the events that move them."""

    def __init__(self, process: str, faults: ActiveFaults) -> None:
        self.process = process
        self.faults = faults
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        self.registry.register(_HeapCollector())
        self._families: dict[str, Counter | Gauge | Histogram] = {}
        self._lock = threading.Lock()
        self._responses = 0  # HTTP responses seen (the http-counter-half fault drops every second one)
        for spec in DECLARATIONS:
            if spec.exported_by(process) and not spec.collector:  # the collectors above export process_*
                self._families[spec.name] = self._build(spec)

    def _build(self, spec: Declared) -> Counter | Gauge | Histogram:
        labels = list(spec.labels)
        if self.faults.active("label-drift") and spec.name in (HTTP_REQUESTS, HTTP_DURATION):
            labels = list(_DRIFTED_HTTP_LABELS)
        doc = spec.help or spec.name
        if spec.type == "counter":
            # prometheus_client appends _total itself; hand it the base name.
            base = spec.name[: -len("_total")] if spec.name.endswith("_total") else spec.name
            return Counter(base, doc, labels, registry=self.registry)
        if spec.type == "gauge":
            return Gauge(spec.name, doc, labels, registry=self.registry, multiprocess_mode="livesum")
        return Histogram(spec.name, doc, labels, buckets=spec.buckets, registry=self.registry)

    def has(self, name: str) -> bool:
        return name in self._families

    def family(self, name: str):
        return self._families[name]

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    # -- HTTP (API process) ---------------------------------------------------------------
    def http_response(self, method: str, route: str, status: int, seconds: float, raw_path: str = "") -> None:
        """Every HTTP response: one count and one duration observation."""
        if self.faults.active("label-drift"):
            labels = (method, raw_path or route, str(status))
        else:
            labels = (method, route, str(status))
        self._responses += 1
        half = self.faults.active("http-counter-half") and self._responses % 2 == 0
        if not self.faults.active("http-counter-frozen") and not half:
            self._families[HTTP_REQUESTS].labels(*labels).inc()
        self._families[HTTP_DURATION].labels(*labels).observe(seconds)

    def error_answered(self, error_type: str, code: str) -> None:
        self._families[ERRORS].labels(error_type, code).inc()

    # -- WebSockets (both) --------------------------------------------------------------------
    def ws_opened(self, channel: str) -> None:
        self._families[WS_ACTIVE].labels(channel).inc()
        self._families[WS_TOTAL].labels(channel).inc()

    def ws_closed(self, channel: str) -> None:
        if not self.faults.active("ws-gauge-leak"):
            self._families[WS_ACTIVE].labels(channel).dec()

    def ws_message(self, channel: str, direction: str) -> None:
        self._families[WS_MESSAGES].labels(channel, direction).inc()

    def rate_limited(self, limiter_type: str, user_id: str) -> None:
        if not self.faults.active("rate-limit-uncounted"):
            self._families[RATE_LIMIT_HITS].labels(limiter_type, user_id).inc()

    # -- sessions (API) -------------------------------------------------------------------
    def session_created(self) -> None:
        self._families[SESSIONS_ACTIVE].inc()

    def session_deleted(self) -> None:
        if not self.faults.active("sessions-gauge-leak"):
            self._families[SESSIONS_ACTIVE].dec()

    def set_participants(self, session_id: str, count: int) -> None:
        self._families[PARTICIPANTS].labels(session_id).set(count)

    # -- Yjs ------------------------------------------------------------------------------
    def yjs_document_loaded(self) -> None:
        self._families[YJS_DOCUMENTS].inc()

    def yjs_document_unloaded(self) -> None:
        self._families[YJS_DOCUMENTS].dec()

    def yjs_update_persisted(self) -> None:
        self._families[YJS_OPERATIONS].labels("update").inc()

    def yjs_synced(self, seconds: float) -> None:
        self._families[YJS_SYNC].observe(seconds)

    # -- database (both) ------------------------------------------------------------------
    def db_query(self, operation: str, model: str, status: str, seconds: float) -> None:
        if self.faults.active("db-counter-frozen"):
            return
        self._families[DB_QUERIES].labels(operation, model, status).inc()
        self._families[DB_DURATION].labels(operation, model).observe(seconds)

    def initialise_channel(self, channel: str) -> None:
        """Export zero-valued series for a channel so a scrape before the first event sees them."""
        self._families[WS_ACTIVE].labels(channel)
        self._families[WS_TOTAL].labels(channel)
        for direction in ("inbound", "outbound"):
            self._families[WS_MESSAGES].labels(channel, direction)
