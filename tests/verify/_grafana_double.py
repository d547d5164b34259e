"""A Grafana test double: the three Grafana HTTP endpoints the verifier uses, on loopback.

    >>> with GrafanaDouble(prometheus_url, DASHBOARD) as grafana:
    ...     GrafanaAPI(grafana.url, user="admin", password=grafana.password).dashboard("codesync-monitoring")

TEST DOUBLE, and why: no Grafana server can run here (it ships as a container image and
there is no Docker engine), yet the verifier's Grafana client and check must be exercised
against an HTTP server that answers the way Grafana does. This double implements only
GET /api/dashboards/uid/<uid>, GET /api/datasources and POST /api/ds/query, with basic auth.
It is not a fake of the data: every query is forwarded to the REAL Prometheus of the test's
stack (/api/v1/query_range), with Grafana's own step rule (the larger of intervalMs and the
datasource's minimum interval) and range alignment (start and end floored to the step), and
the answer is returned in Grafana's data-frame format (one frame per series: a time field
and a number field carrying the labels; values as columns, times in epoch ms, NaN and Inf
as null with their indexes under data.entities).

For the failure cases a test may `tamper` with queries whose text contains a substring:
"scale" multiplies every value by 1.5 (Grafana disagreeing with Prometheus), "error"
answers as Grafana does when its datasource fails (HTTP 500 with the error in the result).
"""

from __future__ import annotations

import base64
import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

DATASOURCE_UID = "prometheus"


class GrafanaDouble:
    """A loopback Grafana stand-in forwarding queries to a real Prometheus (see the module doc)."""

    def __init__(
        self,
        prometheus_url: str,
        dashboard: Path | None,
        *,
        user: str = "admin",
        password: str = "double-password",
        min_interval_s: float = 0.0,
        tamper: dict[str, str] | None = None,
    ) -> None:
        self.prometheus_url = prometheus_url.rstrip("/")
        self.model = json.loads(Path(dashboard).read_text()) if dashboard else None
        self.user, self.password = user, password
        self.min_interval_s = min_interval_s
        self.tamper = dict(tamper or {})
        self.queries: list[dict[str, Any]] = []  # every query received, for the tests to inspect
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, name="grafana-double", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> GrafanaDouble:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # -- the endpoints -----------------------------------------------------------------
    def authorized(self, header: str | None) -> bool:
        expected = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return header == f"Basic {expected}"

    def dashboard(self, uid: str) -> tuple[int, Any]:
        if self.model is None or self.model.get("uid") != uid:
            return 404, {"message": "Dashboard not found"}
        return 200, {"dashboard": self.model, "meta": {"provisioned": True, "slug": "codesync"}}

    def datasources(self) -> tuple[int, Any]:
        return 200, [{"uid": DATASOURCE_UID, "name": "Prometheus", "type": "prometheus", "isDefault": True}]

    def ds_query(self, body: dict[str, Any]) -> tuple[int, Any]:
        start_ms, end_ms = int(body["from"]), int(body["to"])
        results: dict[str, Any] = {}
        for query in body.get("queries") or []:
            self.queries.append(query)
            ref = query.get("refId", "A")
            if (query.get("datasource") or {}).get("uid") != DATASOURCE_UID:
                results[ref] = {"status": 404, "error": "data source not found"}
                continue
            results[ref] = self._one(query, start_ms, end_ms)
        # Grafana answers 400 as a whole when a query failed; each result keeps its own status.
        failed = any(r["status"] != 200 for r in results.values())
        return (400 if failed else 200), {"results": results}

    def _one(self, query: dict[str, Any], start_ms: int, end_ms: int) -> dict[str, Any]:
        expr = str(query["expr"])
        mode = next((m for text, m in self.tamper.items() if text in expr), None)
        if mode == "error":
            return {"status": 500, "error": 'Post "http://prometheus:9090/api/v1/query_range": connection refused'}
        step = max(float(query.get("intervalMs", 1000)) / 1000.0, self.min_interval_s)
        start = math.floor(start_ms / 1000.0 / step) * step
        end = math.floor(end_ms / 1000.0 / step) * step
        answer = requests.get(
            f"{self.prometheus_url}/api/v1/query_range",
            params={"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"},
            timeout=10,
        ).json()
        if answer.get("status") != "success":
            return {"status": 400, "error": f"{answer.get('errorType')}: {answer.get('error')}"}
        factor = 1.5 if mode == "scale" else 1.0
        frames = []
        for item in answer["data"]["result"]:
            times = [round(float(t) * 1000) for t, _v in item["values"]]
            raw = [float(v) * factor for _t, v in item["values"]]
            values = [v if math.isfinite(v) else None for v in raw]  # JSON has no NaN/Inf: entities
            entities = {
                name: [i for i, v in enumerate(raw) if test(v)]
                for name, test in (
                    ("NaN", math.isnan),
                    ("Inf", lambda v: v == math.inf),
                    ("NegInf", lambda v: v == -math.inf),
                )
            }
            frames.append(
                {
                    "schema": {
                        "refId": query.get("refId", "A"),
                        "meta": {"type": "timeseries-multi", "executedQueryString": f"Expr: {expr}\nStep: {step:g}s"},
                        "fields": [
                            {"name": "Time", "type": "time", "typeInfo": {"frame": "time.Time"}},
                            {
                                "name": "Value",
                                "type": "number",
                                "typeInfo": {"frame": "float64", "nullable": True},
                                "labels": dict(item["metric"]),
                            },
                        ],
                    },
                    "data": {
                        "values": [times, values],
                        "entities": [None, {k: v for k, v in entities.items() if v} or None],
                    },
                }
            )
        return {"status": 200, "frames": frames}


def _handler(double: GrafanaDouble) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet under pytest
            return

        def _send(self, status: int, doc: Any) -> None:
            payload = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _auth(self) -> bool:
            if double.authorized(self.headers.get("Authorization")):
                return True
            self._send(401, {"message": "Invalid username or password"})
            return False

        def do_GET(self) -> None:
            if not self._auth():
                return
            if self.path.startswith("/api/dashboards/uid/"):
                self._send(*double.dashboard(self.path.rsplit("/", 1)[-1]))
            elif self.path == "/api/datasources":
                self._send(*double.datasources())
            else:
                self._send(404, {"message": "Not found"})

        def do_POST(self) -> None:
            if not self._auth():
                return
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            if self.path == "/api/ds/query":
                self._send(*double.ds_query(body))
            else:
                self._send(404, {"message": "Not found"})

    return Handler
