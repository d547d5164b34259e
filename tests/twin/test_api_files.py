"""Files, content and search over real HTTP, and the shared per-user rate limit.

The rate-limit tests run once against a twin with in-process state and once against a
twin using the real Redis under this test's own key prefix.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest
import redis

from codesync_load.twin_process import TwinProcess
from tests.twin._http import CookieClient, delta, isolated_twin, scrape, value


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwinProcess]:
    with isolated_twin(tmp_path_factory.mktemp("files"), "filestwin") as twin:
        yield twin


def content_path(session_id: str, path: str) -> str:
    return f"/api/sessions/{session_id}/files/{quote(path, safe='')}/content"


def test_create_and_list_files(owner: CookieClient) -> None:
    session_id = owner.create_session("Files one")["id"]
    base = f"/api/sessions/{session_id}/files"
    made = owner.post(base, {"name": "src/app.py", "type": "file"})
    assert made.status_code == 201
    assert {k: made.json()["data"]["file"][k] for k in ("name", "path", "type", "sessionId")} == {
        "name": "app.py",
        "path": "src/app.py",
        "type": "file",
        "sessionId": session_id,
    }
    assert owner.post(base, {"name": "src", "type": "folder"}).status_code == 201
    duplicate = owner.post(base, {"name": "src/app.py"})
    assert duplicate.status_code == 409 and duplicate.json()["error"]["code"] == "CONFLICT"
    for bad in ({"name": "x.py", "type": "symlink"}, {"name": "../etc/passwd"}, {"name": ""}, {}):
        answer = owner.post(base, bad)
        assert answer.status_code == 400 and answer.json()["error"]["code"] == "VALIDATION_ERROR", bad
    listed = owner.get(base)
    assert listed.status_code == 200
    assert [(f["path"], f["type"]) for f in listed.json()["data"]["files"]] == [
        ("src", "folder"),
        ("src/app.py", "file"),
    ]
    assert owner.post("/api/sessions/cnosuchsession/files", {"name": "a.py"}).status_code == 404


def test_content_put_upserts_and_paths_may_be_encoded_or_raw(owner: CookieClient) -> None:
    session_id = owner.create_session("Content one")["id"]
    encoded = content_path(session_id, "src/deep/main.py")
    assert "%2F" in encoded
    raw = f"/api/sessions/{session_id}/files/src/deep/main.py/content"
    missing = owner.get(encoded)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"

    saved = owner.put(encoded, {"content": "print('hi')\n"})
    assert saved.status_code == 200 and saved.json()["success"] is True
    assert owner.get(raw).json() == {"success": True, "data": {"content": "print('hi')\n"}}
    assert owner.put(raw, {"content": "print('bye')\n"}).status_code == 200
    assert owner.get(encoded).json()["data"]["content"] == "print('bye')\n"
    # Names with spaces and unicode survive the encoding.
    odd = content_path(session_id, "notes/a b ü.md")
    assert owner.put(odd, {"content": "ü"}).status_code == 200
    assert owner.get(odd).json()["data"]["content"] == "ü"
    paths = [f["path"] for f in owner.get(f"/api/sessions/{session_id}/files").json()["data"]["files"]]
    assert paths == ["notes/a b ü.md", "src/deep/main.py"]

    no_content = owner.put(encoded, {"text": "x"})
    assert no_content.status_code == 400 and "content" in no_content.json()["error"]["message"]


def test_search(owner: CookieClient) -> None:
    session_id = owner.create_session("Search one")["id"]
    owner.put(content_path(session_id, "a.py"), {"content": "def Foo():\n    return foobar\n"})
    owner.put(content_path(session_id, "b.py"), {"content": "x = 1\nFOO = 2\n"})
    url = f"/api/sessions/{session_id}/search"

    def hits(**body) -> list[tuple[str, int, int]]:
        response = owner.post(url, body)
        assert response.status_code == 200, response.text
        return [(r["path"], m["line"], m["column"]) for r in response.json()["data"]["results"] for m in r["matches"]]

    assert hits(query="foo") == [("a.py", 1, 5), ("a.py", 2, 12), ("b.py", 2, 1)]
    assert hits(query="Foo", caseSensitive=True) == [("a.py", 1, 5)]
    assert hits(query="foo", wholeWord=True) == [("a.py", 1, 5), ("b.py", 2, 1)]
    assert hits(query=r"x\s*=\s*\d", regex=True) == [("b.py", 1, 1)]
    assert hits(query="nothing-like-this") == []
    for bad in ({"query": "("}, {"query": "(", "regex": True}, {"query": ""}, {"query": "a", "regex": "yes"}):
        response = owner.post(url, bad)
        if bad == {"query": "("}:  # literal text, not a pattern
            assert response.status_code == 200
        else:
            assert response.status_code == 400 and response.json()["error"]["code"] == "VALIDATION_ERROR", bad


def test_private_session_files_need_access_and_viewers_cannot_write(api: TwinProcess, owner: CookieClient) -> None:
    session_id = owner.create_session("Private files", visibility="PRIVATE")["id"]
    owner.put(content_path(session_id, "a.py"), {"content": "secret"})
    with CookieClient(api.api_url) as other:
        other.user = other.register()
        for answer in (
            other.get(f"/api/sessions/{session_id}/files"),
            other.get(content_path(session_id, "a.py")),
            other.put(content_path(session_id, "a.py"), {"content": "mine"}),
            other.post(f"/api/sessions/{session_id}/search", {"query": "secret"}),
        ):
            assert answer.status_code == 403 and answer.json()["error"]["code"] == "FORBIDDEN"
        owner.post(f"/api/sessions/{session_id}/participants", {"userId": other.user["id"], "role": "VIEWER"})
        assert other.get(content_path(session_id, "a.py")).json()["data"]["content"] == "secret"
        refused = other.put(content_path(session_id, "a.py"), {"content": "mine"})
        assert refused.status_code == 403
    assert owner.get(content_path(session_id, "a.py")).json()["data"]["content"] == "secret"


# -- rate limits -------------------------------------------------------------------------------
@pytest.fixture(params=["in-process", "redis"])
def limited(request: pytest.FixtureRequest, twin_factory) -> TwinProcess:
    if request.param == "in-process":
        return twin_factory(name="limits-memory")
    twin = twin_factory(
        name="limits-redis",
        env={"REDIS_URL": request.getfixturevalue("redis_url")},
        extra_args=["--redis-prefix", request.getfixturevalue("redis_prefix")],
    )
    assert twin.record["state"] == "redis"
    return twin


def _limited_requests(client: CookieClient, session_id: str) -> list:
    """Content PUT, content GET and files-list take turns: all share one window."""
    calls = [
        lambda: client.put(content_path(session_id, "a.py"), {"content": "x"}),
        lambda: client.get(content_path(session_id, "a.py")),
        lambda: client.get(f"/api/sessions/{session_id}/files"),
    ]
    return calls


def test_files_routes_refuse_at_hit_61(limited: TwinProcess, request: pytest.FixtureRequest) -> None:
    with CookieClient(limited.api_url) as client:
        user = client.register()
        session_id = client.create_session("Limits")["id"]
        calls = _limited_requests(client, session_id)
        before = scrape(limited.api_url + "/metrics")
        started = time.time()
        answers = [calls[i % 3]() for i in range(63)]
        statuses = [a.status_code for a in answers]
        assert statuses[:60] == [200] * 60, statuses
        assert statuses[60:] == [429, 429, 429]
        assert [int(a.headers["X-RateLimit-Remaining"]) for a in answers[:3]] == [59, 58, 57]
        assert answers[59].headers["X-RateLimit-Remaining"] == "0"
        rejected = answers[60]
        assert rejected.json() == {
            "error": {"message": rejected.json()["error"]["message"], "code": "RATE_LIMIT", "statusCode": 429}
        }
        assert rejected.headers["Retry-After"] == "60"
        assert rejected.headers["X-RateLimit-Limit"] == "60"
        assert rejected.headers["X-RateLimit-Remaining"] == "0"
        assert started + 59 <= int(rejected.headers["X-RateLimit-Reset"]) <= time.time() + 61
        # Search shares the window and its limit is lower: refused too; other routes are not limited.
        search = client.post(f"/api/sessions/{session_id}/search", {"query": "x"})
        assert search.status_code == 429 and search.headers["X-RateLimit-Limit"] == "30"
        assert client.get(f"/api/sessions/{session_id}").status_code == 200
        assert "X-RateLimit-Limit" not in client.get(f"/api/sessions/{session_id}").headers
        after = scrape(limited.api_url + "/metrics")
    assert delta(before, after, "codesync_rate_limit_hits_total", type="API", user_id=user["id"]) == 4
    assert delta(before, after, "codesync_rate_limit_hits_total") == 4
    assert delta(before, after, "codesync_errors_total", type="RateLimitError", code="RATE_LIMIT") == 4
    route = "/api/sessions/:id/files/:path/content"
    assert delta(before, after, "codesync_http_requests_total", route=route, status_code="429") == 2
    if limited.record["state"] == "redis":
        prefix = request.getfixturevalue("redis_prefix")
        client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
        try:
            assert client.zcard(f"{prefix}ratelimit:api:files:{user['id']}") == 64  # rejected ones recorded
        finally:
            client.close()


def test_search_refuses_at_hit_31(limited: TwinProcess) -> None:
    with CookieClient(limited.api_url) as client:
        user = client.register()
        session_id = client.create_session("Search limits")["id"]
        url = f"/api/sessions/{session_id}/search"
        answers = [client.post(url, {"query": "x"}) for _ in range(31)]
        assert [a.status_code for a in answers] == [200] * 30 + [429]
        assert answers[30].headers["Retry-After"] == "60"
        assert answers[30].headers["X-RateLimit-Limit"] == "30"
        # The files routes still have room in the same window: 31 of 60 used.
        files = client.get(f"/api/sessions/{session_id}/files")
        assert files.status_code == 200 and files.headers["X-RateLimit-Remaining"] == "28"
        samples = scrape(limited.api_url + "/metrics")
    assert value(samples, "codesync_rate_limit_hits_total", type="API", user_id=user["id"]) == 1


def test_register_and_login_are_not_limited(twin_factory) -> None:
    twin = twin_factory(name="unlimited")
    with CookieClient(twin.api_url) as client:
        email = client.register()["email"]
        statuses = {
            client.post("/api/auth/login", {"email": email, "password": "Passw0rd-ok"}).status_code for _ in range(70)
        }
    assert statuses == {200}
