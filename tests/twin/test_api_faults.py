"""The API-side faults change exactly the symptom they name, visibly on /metrics.

Also the request timeout (408), checked on an in-loop twin whose timeout is shortened,
since the CLI keeps CodeSync's 30 s.
"""

from __future__ import annotations

import asyncio
import gzip
import http.server
import random
import threading
import time
from pathlib import Path

import aiohttp

from tests.twin._http import CookieClient, delta, scrape, value, wait_for
from twin.api.middleware import ERROR_BURST_SEED
from twin.config import TwinConfig
from twin.faults import parse_faults
from twin.server import TwinServer

PUT_ROUTE = "/api/sessions/:id/files/:path/content"
BUCKET = "codesync_http_request_duration_seconds_bucket"


def _put_bucket(samples, le: str) -> float:
    return value(samples, BUCKET, method="PUT", route=PUT_ROUTE, status_code="200", le=le)


def _timed_put(twin) -> tuple[float, dict, dict]:
    """Register, make a session, then time one content PUT between two scrapes."""
    with CookieClient(twin.api_url) as client:
        client.register()
        session_id = client.create_session("Slow")["id"]
        before = scrape(twin.api_url + "/metrics")
        started = time.perf_counter()
        answer = client.put(f"/api/sessions/{session_id}/files/a.py/content", {"content": "x"})
        elapsed = time.perf_counter() - started
        assert answer.status_code == 200
        after = scrape(twin.api_url + "/metrics")
    return elapsed, before, after


def test_slow_route_moves_the_put_to_a_higher_bucket(twin_factory) -> None:
    healthy_elapsed, h_before, h_after = _timed_put(twin_factory(name="fast"))
    slow_elapsed, s_before, s_after = _timed_put(twin_factory(faults=["slow-route=600"], name="slow"))
    assert slow_elapsed >= 0.6
    assert slow_elapsed - healthy_elapsed >= 0.5
    # Healthy: inside 0.5 s. Slow: beyond 0.5 s, inside 1 s.
    assert _put_bucket(h_after, "0.5") - _put_bucket(h_before, "0.5") == 1
    assert _put_bucket(s_after, "0.5") - _put_bucket(s_before, "0.5") == 0
    assert _put_bucket(s_after, "1.0") - _put_bucket(s_before, "1.0") == 1
    duration_sum = "codesync_http_request_duration_seconds_sum"
    assert delta(s_before, s_after, duration_sum, method="PUT", route=PUT_ROUTE) >= 0.6


def test_error_burst_fails_the_seeded_fraction_and_counts_it(twin_factory) -> None:
    twin = twin_factory(faults=["error-burst=0.5"], name="burst")
    before = scrape(twin.api_url + "/metrics")
    with CookieClient(twin.api_url) as client:
        health = [client.get("/health").status_code for _ in range(5)]
        statuses = [client.get("/api/sessions").status_code for _ in range(40)]
    after = scrape(twin.api_url + "/metrics")
    assert health == [200] * 5  # only /api is affected
    rng = random.Random(ERROR_BURST_SEED)
    predicted = [500 if rng.random() < 0.5 else 200 for _ in range(40)]
    assert statuses == predicted  # reproducible: the same seed fails the same requests
    failures = statuses.count(500)
    assert 5 < failures < 35
    labels = {"method": "GET", "route": "/api/sessions"}
    assert delta(before, after, "codesync_http_requests_total", status_code="500", **labels) == failures
    assert delta(before, after, "codesync_http_requests_total", status_code="200", **labels) == 40 - failures
    assert delta(before, after, "codesync_errors_total", type="InternalError", code="INTERNAL_ERROR") == failures


def test_http_counter_frozen_stops_only_the_counter(twin_factory) -> None:
    twin = twin_factory(faults=["http-counter-frozen"], name="frozen")
    before = scrape(twin.api_url + "/metrics")
    with CookieClient(twin.api_url) as client:
        assert [client.get("/health").status_code for _ in range(5)] == [200] * 5
    after = scrape(twin.api_url + "/metrics")
    assert delta(before, after, "codesync_http_requests_total") == 0
    assert delta(before, after, "codesync_http_request_duration_seconds_count", route="/health") == 5


def test_label_drift_exports_path_and_status(twin_factory) -> None:
    twin = twin_factory(faults=["label-drift"], name="drift")
    with CookieClient(twin.api_url) as client:
        client.get("/health")
        client.get("/api/sessions/cabc")
    samples = scrape(twin.api_url + "/metrics")
    counted = {labels for name, labels in samples if name == "codesync_http_requests_total"}
    assert frozenset({("method", "GET"), ("path", "/api/sessions/cabc"), ("status", "404")}) in counted
    assert all("route" not in dict(labels) and "status_code" not in dict(labels) for labels in counted)


def test_sessions_gauge_leak_never_comes_down(twin_factory) -> None:
    twin = twin_factory(faults=["sessions-gauge-leak"], name="leak")
    with CookieClient(twin.api_url) as client:
        client.register()
        first = client.create_session("Leaky one")["id"]
        client.create_session("Leaky two")
        assert client.delete(f"/api/sessions/{first}").status_code == 200
        listed = client.get("/api/sessions").json()["data"]["total"]
    assert listed == 1
    assert value(scrape(twin.api_url + "/metrics"), "codesync_sessions_active") == 2


def test_request_timeout_answers_408(tmp_path: Path) -> None:
    config = TwinConfig(
        api_port=0,
        yjs_port=0,
        sqlite_path=tmp_path / "timeout.sqlite3",
        request_timeout_s=0.3,
        faults=parse_faults(["slow-route=2000"]),
        bcrypt_rounds=4,
    )

    async def scenario() -> tuple[int, dict, float, bytes]:
        server = TwinServer(config)
        try:
            await server.start()
            url = f"http://127.0.0.1:{server.api_port}"
            async with aiohttp.ClientSession() as http:
                started = time.perf_counter()
                async with http.put(url + "/api/sessions/cx/files/a.py/content", json={"content": "x"}) as answer:
                    status, body = answer.status, await answer.json()
                elapsed = time.perf_counter() - started
                async with http.get(url + "/health") as health:
                    assert health.status == 200
            assert server.api is not None
            return status, body, elapsed, server.api.metrics.exposition()
        finally:
            await server.stop()

    status, body, elapsed, exposition = asyncio.run(scenario())
    assert status == 408
    assert body == {"error": {"message": "Request timeout", "code": "REQUEST_TIMEOUT", "statusCode": 408}}
    assert 0.3 <= elapsed < 1.5
    assert b'codesync_errors_total{code="REQUEST_TIMEOUT",type="TimeoutError"} 1.0' in exposition


class _SentryRecorder(http.server.BaseHTTPRequestHandler):
    """Stands in for Sentry's ingest endpoint on loopback: keeps every envelope it is sent."""

    envelopes: list[bytes] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "br":
            import brotli  # only when sentry-sdk itself found it installed

            body = brotli.decompress(body)
        type(self).envelopes.append(body)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


def test_5xx_answers_are_reported_to_sentry_and_4xx_are_not(twin_factory) -> None:
    _SentryRecorder.envelopes = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SentryRecorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        dsn = f"http://publickey@127.0.0.1:{server.server_address[1]}/42"
        twin = twin_factory(faults=["error-burst=1.0"], env={"SENTRY_DSN": dsn}, name="sentry")
        with CookieClient(twin.api_url) as client:
            assert client.get("/not/api/route").status_code == 404  # an answered 4xx
            assert client.get("/api/sessions").status_code == 500  # every /api request fails
        wait_for(lambda: _SentryRecorder.envelopes, timeout=15, what="an envelope at the fake Sentry")
        events = b"\n".join(_SentryRecorder.envelopes)
        assert b"InternalError" in events and b"error-burst" in events
        assert b"NotFoundError" not in events  # sent in order: a 4xx report would have come first
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
