"""Auth over real HTTP: CSRF cookies, register/login/me/logout, JWT cookie, bcrypt cost.

One twin per module (SQLite, in-process state) with known JWT and CSRF secrets, so the
tests can check the HMAC and the JWT the twin hands out. The client keeps its own cookies:
the twin sets them for Domain=localhost while the tests talk to 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
import requests

from codesync_load.twin_process import TwinProcess
from tests.twin._http import PASSWORD, CookieClient, delta, isolated_twin, scrape, unique_email

JWT_SECRET = "j" * 40
CSRF_SECRET = "c" * 40


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwinProcess]:
    with isolated_twin(
        tmp_path_factory.mktemp("auth"), "authtwin", JWT_SECRET=JWT_SECRET, CSRF_SECRET=CSRF_SECRET
    ) as twin:
        yield twin


def _cookie_attrs(client: CookieClient, name: str) -> dict[str, str]:
    for jar in client.last_set_cookies:
        if name in jar:
            morsel = jar[name]
            return {key: str(morsel[key]) for key in ("domain", "path", "httponly", "samesite", "max-age")}
    raise AssertionError(f"no Set-Cookie for {name}")


def test_any_request_issues_session_and_csrf_cookies(api: TwinProcess) -> None:
    with CookieClient(api.api_url) as client:
        response = client.get("/health")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ok" and set(body) == {"status", "timestamp", "uptime", "environment"}
        session_id = client.cookies["sessionId"]
        assert re.fullmatch(r"[0-9a-f]{64}", session_id)
        expected = hmac.new(CSRF_SECRET.encode(), session_id.encode(), hashlib.sha256).hexdigest()
        assert client.cookies["csrf-token"] == expected
        assert response.headers["X-CSRF-Token"] == expected
        attrs = _cookie_attrs(client, "sessionId")
        assert attrs["domain"] == "localhost" and attrs["httponly"] == "True" and attrs["samesite"] == "Strict"
        assert _cookie_attrs(client, "csrf-token")["httponly"] == ""  # readable by the browser

        # With a valid sessionId the twin keeps it and the token stays the same.
        again = client.get("/api/sessions")
        assert client.cookies["sessionId"] == session_id
        assert again.headers["X-CSRF-Token"] == expected
        assert all("sessionId" not in jar for jar in client.last_set_cookies)

        # Even an unknown route hands out fresh cookies to a client that has none.
        fresh = requests.get(api.api_url + "/no/such/route", timeout=5)
        assert fresh.status_code == 404 and "X-CSRF-Token" in fresh.headers
        assert "sessionId=" in fresh.headers["Set-Cookie"]


def test_requests_cookie_jar_alone_cannot_pass_csrf(api: TwinProcess) -> None:
    """Why the client keeps cookies itself: requests never returns Domain=localhost cookies to 127.0.0.1."""
    with requests.Session() as session:
        token = session.get(api.api_url + "/health", timeout=5).headers["X-CSRF-Token"]
        response = session.post(
            api.api_url + "/api/auth/register",
            json={"email": unique_email(), "password": PASSWORD, "name": "Jar"},
            headers={"x-csrf-token": token},
            timeout=5,
        )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "CSRF_INVALID"


def test_register_me_login_logout(api: TwinProcess) -> None:
    email = unique_email("flow")
    with CookieClient(api.api_url) as client:
        client.get("/health")
        response = client.post("/api/auth/register", {"email": email.upper(), "password": PASSWORD, "name": "Flow"})
        assert response.status_code == 201, response.text
        user = response.json()["data"]["user"]
        assert response.json()["success"] is True
        assert user["email"] == email and user["name"] == "Flow" and user["role"] == "USER"
        assert "password" not in response.text.lower()
        token = client.cookies["token"]
        assert token not in response.text  # the JWT only travels in the cookie
        attrs = _cookie_attrs(client, "token")
        assert attrs["domain"] == "localhost" and attrs["httponly"] == "True" and attrs["samesite"] == "Strict"
        assert jwt.get_unverified_header(token)["alg"] == "HS256"
        claims = jwt.decode(token, JWT_SECRET, algorithms=["HS256"])
        assert {claims["userId"], claims["email"], claims["role"]} == {user["id"], email, "USER"}
        assert claims["exp"] - claims["iat"] == 7 * 24 * 3600

        me = client.get("/api/auth/me")
        assert me.status_code == 200 and me.json()["data"]["user"] == user

        logout = client.post("/api/auth/logout")
        assert logout.status_code == 200 and logout.json()["success"] is True
        assert "token" not in client.cookies  # cleared by the answer

        # The old token is blacklisted, even when replayed explicitly.
        client.cookies["token"] = token
        replay = client.get("/api/auth/me")
        assert replay.status_code == 401 and replay.json()["error"]["code"] == "AUTH_REQUIRED"

        login = client.post("/api/auth/login", {"email": email, "password": PASSWORD})
        assert login.status_code == 200 and login.json()["data"]["user"]["id"] == user["id"]
        assert client.cookies["token"] != token
        assert client.get("/api/auth/me").status_code == 200


def test_csrf_failures_and_their_error_counts(api: TwinProcess) -> None:
    before = scrape(api.api_url + "/metrics")
    body = {"email": unique_email(), "password": PASSWORD, "name": "Csrf"}
    with CookieClient(api.api_url) as client:
        client.get("/health")
        missing = client.post("/api/auth/register", body, csrf=False)
        wrong = client.post("/api/auth/register", body, headers={"x-csrf-token": "0" * 64})
        forged = dict(client.cookies, **{"csrf-token": "f" * 64})
        client.cookies = forged
        forged_answer = client.post("/api/auth/register", body, headers={"x-csrf-token": "f" * 64})
    with CookieClient(api.api_url) as other:
        other.get("/health")
        with CookieClient(api.api_url) as client:
            client.get("/health")
            borrowed = client.post("/api/auth/register", body, headers={"x-csrf-token": other.csrf})
    codes = [r.json()["error"]["code"] for r in (missing, wrong, forged_answer, borrowed)]
    assert [r.status_code for r in (missing, wrong, forged_answer, borrowed)] == [401] * 4
    assert codes == ["CSRF_MISSING", "CSRF_INVALID", "CSRF_INVALID", "CSRF_INVALID"]
    assert missing.json()["error"]["statusCode"] == 401
    after = scrape(api.api_url + "/metrics")
    assert delta(before, after, "codesync_errors_total", type="CsrfError", code="CSRF_MISSING") == 1
    assert delta(before, after, "codesync_errors_total", type="CsrfError", code="CSRF_INVALID") == 3
    assert delta(before, after, "codesync_db_queries_total", model="User") == 0  # refused before any query


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"email": "not-an-email", "password": PASSWORD, "name": "Bad"}, "email"),
        ({"password": PASSWORD, "name": "Bad"}, "email"),
        ({"email": "x@example.com", "password": "Sh0rt", "name": "Bad"}, "password"),
        ({"email": "x@example.com", "password": "A1" + "a" * 127, "name": "Bad"}, "password"),
        ({"email": "x@example.com", "password": "alllower1", "name": "Bad"}, "password"),
        ({"email": "x@example.com", "password": "ALLUPPER1", "name": "Bad"}, "password"),
        ({"email": "x@example.com", "password": "NoDigitsHere", "name": "Bad"}, "password"),
        ({"email": "x@example.com", "password": PASSWORD, "name": "B"}, "name"),
        ({"email": "x@example.com", "password": PASSWORD, "name": "B" * 101}, "name"),
        ({"email": "x@example.com", "password": 12345678, "name": "Bad"}, "password"),
    ],
)
def test_register_validation(api: TwinProcess, body: dict, fragment: str) -> None:
    with CookieClient(api.api_url) as client:
        client.get("/health")
        response = client.post("/api/auth/register", body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR" and error["statusCode"] == 400 and fragment in error["message"]


def test_conflict_and_bad_credentials(api: TwinProcess) -> None:
    email = unique_email("dup")
    with CookieClient(api.api_url) as client:
        client.register(email)
        again = client.post("/api/auth/register", {"email": email, "password": PASSWORD, "name": "Again"})
        assert again.status_code == 409 and again.json()["error"]["code"] == "CONFLICT"
        wrong = client.post("/api/auth/login", {"email": email, "password": "Wrong-Passw0rd"})
        unknown = client.post("/api/auth/login", {"email": unique_email(), "password": PASSWORD})
        for response in (wrong, unknown):
            assert response.status_code == 401 and response.json()["error"]["code"] == "AUTH_REQUIRED"
        # A password of 128 characters works (bcrypt sees its first 72 bytes, as Node's does).
        long_password = "Aa1" + "x" * 125
        long_email = unique_email("long")
        assert (
            client.post(
                "/api/auth/register", {"email": long_email, "password": long_password, "name": "Long"}
            ).status_code
            == 201
        )
        assert client.post("/api/auth/login", {"email": long_email, "password": long_password}).status_code == 200


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/api/auth/me"),
        ("POST", "/api/auth/logout"),
        ("POST", "/api/sessions"),
        ("PATCH", "/api/sessions/cnone"),
        ("DELETE", "/api/sessions/cnone"),
        ("POST", "/api/sessions/cnone/participants"),
        ("GET", "/api/sessions/cnone/files"),
        ("POST", "/api/sessions/cnone/files"),
        ("GET", "/api/sessions/cnone/files/a.py/content"),
        ("PUT", "/api/sessions/cnone/files/a.py/content"),
        ("POST", "/api/sessions/cnone/search"),
    ],
)
def test_protected_routes_need_a_token(api: TwinProcess, method: str, path: str) -> None:
    with CookieClient(api.api_url) as client:
        client.get("/health")
        response = client.request(method, path, json={})
        client.cookies["token"] = "not.a.jwt"
        forged = client.request(method, path, json={})
    for answer in (response, forged):
        assert answer.status_code == 401, answer.text
        assert answer.json() == {
            "error": {"message": "Authentication required", "code": "AUTH_REQUIRED", "statusCode": 401}
        }


def test_token_signed_with_another_secret_is_refused(api: TwinProcess) -> None:
    with CookieClient(api.api_url) as client:
        user = client.register()
        client.cookies["token"] = jwt.encode(
            {"userId": user["id"], "email": user["email"], "role": "USER", "exp": 4102444800}, "x" * 40, "HS256"
        )
        assert client.get("/api/auth/me").status_code == 401


def _stored_hash(db: Path, email: str) -> str:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT password_hash FROM users WHERE email = ?", (email,)).fetchone()[0]


def test_bcrypt_cost_is_the_configured_one(twin_factory, tmp_path: Path) -> None:
    """Cost 12 (CodeSync's) is really used when asked for; the suite's default cost 4 elsewhere."""
    strong = twin_factory(extra_args=["--bcrypt-rounds", "12"], name="bcrypt12")
    cheap = twin_factory(name="bcrypt4")
    for twin, name, prefix in ((strong, "bcrypt12", "$2b$12$"), (cheap, "bcrypt4", "$2b$04$")):
        email = unique_email(name)
        with CookieClient(twin.api_url) as client:
            client.register(email)
        assert _stored_hash(tmp_path / f"{name}.sqlite3", email).startswith(prefix)
