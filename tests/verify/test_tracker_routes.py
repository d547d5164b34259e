"""Which of the run's routes an error event is about (verify/tracker.py TrackerEvent.route).

A real CodeSync names its routes as its Express router does; the ledger names them as the
metric contract does. A parameter named differently (`:sessionId` against `:id`) or a path
pattern Express writes its own way must not turn one 5xx into a "never reported" row and an
"unknown route" row: that would be a false alarm about the target.
"""

from __future__ import annotations

from scenarios.clients.rest import FILE_CONTENT, SESSION, SESSIONS
from verify.tracker import TrackerEvent

TEMPLATES = [FILE_CONTENT, SESSION, SESSIONS]


def event(transaction: str = "", method: str = "", path: str = "") -> TrackerEvent:
    return TrackerEvent(id="e1", timestamp=0.0, transaction=transaction, method=method, path=path)


def test_a_transaction_naming_a_route_of_the_run_is_that_route() -> None:
    assert event("GET /api/sessions/:id", "GET", "/api/sessions/s1").route(TEMPLATES) == SESSION
    assert event("POST /api/sessions", "POST", "/api/sessions").route(TEMPLATES) == SESSIONS


def test_a_parameter_named_otherwise_is_the_same_route() -> None:
    assert event("GET /api/sessions/:sessionId", "GET", "/api/sessions/s1").route(TEMPLATES) == SESSION
    assert event("GET /api/sessions/:sessionId/").route(TEMPLATES) == SESSION  # trailing slash, no request


def test_a_pattern_express_writes_its_own_way_is_placed_by_the_request_url() -> None:
    raw = event("PUT /api/sessions/:id/files/*", "PUT", "/api/sessions/s1/files/main.py/content")
    assert raw.route(TEMPLATES) == FILE_CONTENT


def test_a_transaction_of_another_method_is_not_trusted_over_the_request() -> None:
    assert event("GET /api/other", "POST", "/api/sessions").route(TEMPLATES) == SESSIONS


def test_what_matches_no_route_of_the_run_is_named_as_the_event_names_it() -> None:
    assert event("GET /api/admin/stats", "GET", "/api/admin/stats").route(TEMPLATES) == "/api/admin/stats"
    assert event("", "GET", "/api/nowhere").route(TEMPLATES) == "/api/nowhere"
    assert event("socket handler").route(TEMPLATES) is None  # not HTTP: listed, not counted
