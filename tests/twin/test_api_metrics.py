"""The API's own telemetry and error answers: exact moves per request, /metrics and its token.

Each test scrapes before and after a known burst of traffic and checks that every series
moved by exactly what the traffic predicts (the scrapes themselves are never counted).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from codesync_load.twin_process import TwinProcess
from tests.twin._http import CookieClient, delta, isolated_twin, scrape

REQUESTS = "codesync_http_requests_total"
DURATION_COUNT = "codesync_http_request_duration_seconds_count"
ERRORS = "codesync_errors_total"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwinProcess]:
    with isolated_twin(tmp_path_factory.mktemp("metrics"), "metricstwin") as twin:
        yield twin


def test_every_response_is_counted_once_with_its_route_template(api: TwinProcess) -> None:
    metrics_url = api.api_url + "/metrics"
    with CookieClient(api.api_url) as client:
        client.register()
        session_id = client.create_session("Counted")["id"]
        before = scrape(metrics_url)
        for _ in range(3):
            client.get("/health")
        client.get(f"/api/sessions/{session_id}")
        client.get("/api/sessions/cmissing")
        client.put(f"/api/sessions/{session_id}/files/src%2Fa.py/content", {"content": "a"})
        client.put(f"/api/sessions/{session_id}/files/src/b.py/content", {"content": "b"})
        client.get("/no/such/thing")
        client.get("/api/nothing/here")
        client.post("/health")  # a known path with an unknown method is an unknown route
        assert client.request("HEAD", "/health").status_code == 200  # as Express, HEAD for every GET
        scrape(metrics_url)  # scrapes in between are never counted
        after = scrape(metrics_url)

    expected = {
        ("GET", "/health", "200"): 3,
        ("GET", "/api/sessions/:id", "200"): 1,
        ("GET", "/api/sessions/:id", "404"): 1,
        ("PUT", "/api/sessions/:id/files/:path/content", "200"): 2,
        ("GET", "unmatched", "404"): 2,
        ("POST", "unmatched", "404"): 1,
        ("HEAD", "/health", "200"): 1,
    }
    for (method, route, status), count in expected.items():
        labels = {"method": method, "route": route, "status_code": status}
        assert delta(before, after, REQUESTS, **labels) == count, labels
        assert delta(before, after, DURATION_COUNT, **labels) == count, labels
    assert delta(before, after, REQUESTS) == sum(expected.values())
    assert delta(before, after, REQUESTS, route="/metrics") == 0
    assert not any(dict(labels).get("route") == "/metrics" for name, labels in after if name == REQUESTS)
    assert delta(before, after, ERRORS, type="NotFoundError", code="NOT_FOUND") == 4
    assert delta(before, after, ERRORS) == 4
    # The two PUTs are two upserts; the session GETs each read the session.
    assert delta(before, after, "codesync_db_queries_total", operation="upsert", model="SessionFile") == 2
    assert (
        delta(before, after, "codesync_db_queries_total", operation="findUnique", model="Session", status="success")
        >= 2
    )


def test_malformed_and_oversized_bodies_and_the_twin_stays_up(api: TwinProcess) -> None:
    metrics_url = api.api_url + "/metrics"
    with CookieClient(api.api_url) as client:
        client.register()
        before = scrape(metrics_url)
        headers = {"Content-Type": "application/json"}
        malformed = client.request("POST", "/api/sessions", data=b'{"name": "oops', headers=headers)
        not_object = client.request("POST", "/api/sessions", data=b"[1, 2]", headers=headers)
        huge = client.request(
            "POST", "/api/sessions", data=b'{"name": "' + b"x" * (1024 * 1024 + 10) + b'"}', headers=headers
        )
        huge_put = client.request(
            "PUT", "/api/sessions/cx/files/a.py/content", data=b"{" + b" " * (2 * 1024 * 1024) + b"}", headers=headers
        )
        health = client.get("/health")
        after = scrape(metrics_url)
    for answer in (malformed, not_object):
        assert answer.status_code == 400 and answer.json()["error"]["code"] == "VALIDATION_ERROR"
    for answer in (huge, huge_put):
        assert answer.status_code == 413
        assert answer.json() == {
            "error": {"message": answer.json()["error"]["message"], "code": "PAYLOAD_TOO_LARGE", "statusCode": 413}
        }
    assert health.status_code == 200
    assert delta(before, after, ERRORS, type="ValidationError", code="VALIDATION_ERROR") == 2
    assert delta(before, after, ERRORS, type="PayloadTooLargeError", code="PAYLOAD_TOO_LARGE") == 2
    assert delta(before, after, REQUESTS, method="POST", route="/api/sessions", status_code="413") == 1
    assert (
        delta(before, after, REQUESTS, method="PUT", route="/api/sessions/:id/files/:path/content", status_code="413")
        == 1
    )


def test_metrics_is_prometheus_text_and_open_without_a_token(api: TwinProcess) -> None:
    response = requests.get(api.api_url + "/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE codesync_http_requests_total counter" in response.text
    assert "process_cpu_seconds_total" in response.text
    # A token that is not needed is ignored.
    assert requests.get(api.api_url + "/metrics", headers={"Authorization": "Bearer x"}, timeout=5).status_code == 200


def test_metrics_token_semantics(twin_factory) -> None:
    twin = twin_factory(env={"METRICS_TOKEN": "s3cret-token"}, name="tokentwin")
    url = twin.api_url + "/metrics"
    missing = requests.get(url, timeout=5)
    wrong = requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=5)
    basic = requests.get(url, headers={"Authorization": "Basic s3cret-token"}, timeout=5)
    assert missing.status_code == 401 and missing.json()["error"] == {
        "message": missing.json()["error"]["message"],
        "code": "AUTH_REQUIRED",
        "statusCode": 401,
    }
    for answer in (wrong, basic):
        assert answer.status_code == 403 and answer.json()["error"]["code"] == "FORBIDDEN"
    samples = scrape(url, token="s3cret-token")  # raises unless 200
    assert ("codesync_sessions_active", frozenset()) in samples
    # The refusals went through the error handler, like every other error.
    assert delta({}, samples, ERRORS, type="AuthenticationError", code="AUTH_REQUIRED") == 1
    assert delta({}, samples, ERRORS, type="AuthorizationError", code="FORBIDDEN") == 2
    # /metrics is not counted, whatever the answer.
    assert delta({}, samples, REQUESTS) == 0
