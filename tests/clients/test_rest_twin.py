"""The REST client against the twin as a real process: every route, CSRF, envelopes, 429.

The twin runs on 127.0.0.1 and issues its cookies for Domain=localhost, as CodeSync does,
so every authenticated call here also proves that the client keeps its cookies itself.
"""

from __future__ import annotations

import socket
import uuid
from collections import Counter

import pytest

from scenarios.clients import rest
from scenarios.clients.rest import ApiError, ApiResult, RestClient

PASSWORD = "Secret123"


def new_user(base_url: str) -> RestClient:
    client = RestClient(base_url)
    email = f"u{uuid.uuid4().hex[:10]}@example.test"
    client.register(email, PASSWORD, "Load User").raise_for_error()
    client.email = email  # type: ignore[attr-defined]
    return client


def test_health_issues_the_csrf_pair_and_register_the_token(twin) -> None:
    api = RestClient(twin.api_url)
    health = api.health()
    assert (health.method, health.route, health.status) == ("GET", "/health", 200)
    assert health.data["status"] == "ok"
    assert set(api.cookies) == {"sessionId", "csrf-token"}
    assert api.csrf_token == api.cookies["csrf-token"] and len(api.csrf_token) == 64
    registered = api.register(f"a{uuid.uuid4().hex[:8]}@example.test", PASSWORD, "Ada")
    assert (registered.route, registered.status, registered.error) == ("/api/auth/register", 201, None)
    assert api.token is not None and api.token.count(".") == 2  # a JWT, from the cookie only
    assert api.token not in registered.body.decode()
    assert api.user is not None and api.user["name"] == "Ada"
    me = api.me()
    assert me.status == 200 and me.data["user"]["id"] == api.user["id"]


def test_state_changing_call_without_or_with_a_wrong_csrf_token_is_refused(twin) -> None:
    api = new_user(twin.api_url)
    missing = api.call("POST", "/api/sessions", rest.SESSIONS, {"name": "no csrf"}, csrf=False)
    assert (missing.status, missing.error_code) == (401, "CSRF_MISSING")
    assert missing.error is not None and missing.error.status_code == 401 and missing.error.message
    wrong = api.call("POST", "/api/sessions", rest.SESSIONS, {"name": "bad csrf"}, headers={"x-csrf-token": "0" * 64})
    assert (wrong.status, wrong.error_code) == (401, "CSRF_INVALID")
    with pytest.raises(ApiError, match=r"POST /api/sessions \(/api/sessions\) failed: 401 CSRF_INVALID") as caught:
        wrong.raise_for_error()
    assert caught.value.code == "CSRF_INVALID" and caught.value.status == 401


def test_every_route_and_its_template(twin) -> None:
    seen: list[ApiResult] = []
    owner = RestClient(twin.api_url, observers=(seen.append,))
    email = f"o{uuid.uuid4().hex[:8]}@example.test"
    owner.register(email, PASSWORD, "Owner").raise_for_error()
    other = new_user(twin.api_url)

    relogin = RestClient(twin.api_url)
    assert relogin.login(email, PASSWORD).status == 200 and relogin.token
    assert relogin.me().data["user"]["email"] == email

    created = owner.create_session("load run", language="python", description="by the tests")
    assert created.status == 201
    session_id = created.data["session"]["id"]
    assert owner.get_session(session_id).data["session"]["name"] == "load run"
    assert session_id in {s["id"] for s in _sessions(owner.list_sessions().data)}
    assert owner.update_session(session_id, name="renamed").data["session"]["name"] == "renamed"
    joined = owner.add_participant(session_id, other.user["id"], "EDITOR")
    assert joined.status == 201
    again = owner.add_participant(session_id, other.user["id"], "EDITOR")
    assert (again.status, again.error_code) == (400, "VALIDATION_ERROR")

    assert owner.create_file(session_id, "README.md").status == 201
    path = "src/main.py"  # the slash must travel URL-encoded inside one path segment
    put = owner.put_file_content(session_id, path, "def main():\n    print('hello')\n")
    assert put.status == 200 and put.path.endswith("/files/src%2Fmain.py/content")
    got = owner.get_file_content(session_id, path)
    assert got.data["content"] == "def main():\n    print('hello')\n"
    names = {f.get("path") or f.get("name") for f in owner.list_files(session_id).data["files"]}
    assert {"README.md", path} <= names
    found = owner.search(session_id, "print", case_sensitive=True)
    assert found.status == 200 and found.data["results"]
    assert owner.delete_session(session_id).status == 200
    assert owner.get_session(session_id).status == 404
    assert owner.logout().status == 200 and owner.token is None
    after = owner.me()
    assert (after.status, after.error_code) == (401, "AUTH_REQUIRED")

    counted = Counter((r.method, r.route, r.status) for r in seen)
    assert counted == Counter(
        {
            ("GET", "/health", 200): 1,
            ("POST", "/api/auth/register", 201): 1,
            ("POST", "/api/sessions", 201): 1,
            ("GET", "/api/sessions/:id", 200): 1,
            ("GET", "/api/sessions", 200): 1,
            ("PATCH", "/api/sessions/:id", 200): 1,
            ("POST", "/api/sessions/:id/participants", 201): 1,
            ("POST", "/api/sessions/:id/participants", 400): 1,
            ("POST", "/api/sessions/:id/files", 201): 1,
            ("PUT", "/api/sessions/:id/files/:path/content", 200): 1,
            ("GET", "/api/sessions/:id/files/:path/content", 200): 1,
            ("GET", "/api/sessions/:id/files", 200): 1,
            ("POST", "/api/sessions/:id/search", 200): 1,
            ("DELETE", "/api/sessions/:id", 200): 1,
            ("GET", "/api/sessions/:id", 404): 1,
            ("POST", "/api/auth/logout", 200): 1,
            ("GET", "/api/auth/me", 401): 1,
        }
    )
    assert all(r.elapsed > 0 for r in seen)


def _sessions(data) -> list[dict]:
    return data if isinstance(data, list) else data.get("sessions", [])


def test_error_envelopes_are_parsed(twin) -> None:
    api = new_user(twin.api_url)
    duplicate = RestClient(twin.api_url).register(api.email, PASSWORD, "Again")
    assert (duplicate.status, duplicate.error_code) == (409, "CONFLICT")
    bad_login = RestClient(twin.api_url).login(api.email, "Wrong1234")
    assert (bad_login.status, bad_login.error_code) == (401, "AUTH_REQUIRED")
    assert bad_login.error is not None and bad_login.error.message == "Invalid email or password"
    missing = api.get_session("doesnotexist")
    assert (missing.status, missing.error_code) == (404, "NOT_FOUND")
    assert missing.error is not None and missing.error.status_code == 404
    invalid = api.create_session("ab")  # names are 3-100 characters
    assert (invalid.status, invalid.error_code) == (400, "VALIDATION_ERROR")
    assert not invalid.ok and invalid.data is not None


def test_rate_limit_headers_on_a_429(twin) -> None:
    api = new_user(twin.api_url)
    session_id = api.create_session("limits").raise_for_error().data["session"]["id"]
    results = [api.search(session_id, "x") for _ in range(31)]  # search refuses past 30 per window
    assert [r.status for r in results] == [200] * 30 + [429]
    first, last = results[0].rate_limit, results[-1].rate_limit
    assert first is not None and (first.limit, first.remaining) == (30, 29)
    assert last is not None and (last.limit, last.remaining, last.retry_after) == (30, 0, 60.0)
    assert last.reset is not None and last.reset_raw is not None
    assert results[-1].error_code == "RATE_LIMIT"


def test_no_response_is_status_zero_with_code_transport() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    seen: list[ApiResult] = []
    api = RestClient(f"http://127.0.0.1:{port}", observers=(seen.append,))
    result = api.health()
    assert (result.status, result.error_code, result.route) == (0, "TRANSPORT", "/health")
    assert seen == [result]
    with pytest.raises(ApiError, match="GET /health"):
        result.raise_for_error()


def test_every_request_names_the_harness_in_its_user_agent() -> None:
    """What lets the error-tracker check set other clients' events aside on a shared CodeSync."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from codesync_load import __version__

    agents: list[str | None] = []

    class Recorder(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            agents.append(self.headers.get("User-Agent"))
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = _answer

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        api = RestClient(f"http://127.0.0.1:{server.server_address[1]}")
        assert api.health().status == 500
        assert api.call("POST", "/api/sessions", "/api/sessions", {"name": "x"}, csrf=False).status == 500
        api.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert agents == [f"codesync-load/{__version__}"] * 2 == [rest.USER_AGENT] * 2


def test_set_cookie_parsing() -> None:
    assert rest.parse_set_cookie("token=abc.def.ghi; Max-Age=604800; Domain=localhost; Path=/; HttpOnly") == (
        "token",
        "abc.def.ghi",
        False,
    )
    assert rest.parse_set_cookie("token=; Domain=localhost; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT")[2]
    assert rest.parse_set_cookie('token="x"; Max-Age=0')[2]
