"""Sessions over real HTTP: create/list/get/patch/delete, visibility, participants, the gauge."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from codesync_load.twin_process import TwinProcess
from tests.twin._http import CookieClient, isolated_twin, scrape, value

GAUGE = "codesync_sessions_active"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwinProcess]:
    with isolated_twin(tmp_path_factory.mktemp("sessions"), "sesstwin") as twin:
        yield twin


def _gauge(api: TwinProcess) -> float:
    return value(scrape(api.api_url + "/metrics"), GAUGE)


def test_create_returns_the_session_with_owner_and_participants(api: TwinProcess, owner: CookieClient) -> None:
    response = owner.post(
        "/api/sessions", {"name": "Pairing", "description": "d", "language": "rust", "visibility": "PUBLIC"}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["success"] is True
    session = body["data"]["session"]
    assert re.fullmatch(r"c[0-9a-z]{24}", session["id"])
    assert (session["name"], session["description"], session["language"], session["visibility"]) == (
        "Pairing",
        "d",
        "rust",
        "PUBLIC",
    )
    assert session["ownerId"] == owner.user["id"] and session["owner"]["id"] == owner.user["id"]
    assert [(p["userId"], p["role"]) for p in session["participants"]] == [(owner.user["id"], "OWNER")]
    fetched = owner.get(f"/api/sessions/{session['id']}").json()["data"]["session"]
    assert fetched == session


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "ab", "language": "python", "visibility": "PUBLIC"}, "name"),
        ({"name": "x" * 101, "language": "python", "visibility": "PUBLIC"}, "name"),
        ({"language": "python", "visibility": "PUBLIC"}, "name"),
        ({"name": "Fine name", "language": "cobol", "visibility": "PUBLIC"}, "language"),
        ({"name": "Fine name", "language": "python", "visibility": "SECRET"}, "visibility"),
        ({"name": "Fine name", "language": "python", "visibility": "PUBLIC", "description": 5}, "description"),
    ],
)
def test_create_validation(owner: CookieClient, body: dict, field: str) -> None:
    response = owner.post("/api/sessions", body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR" and field in response.json()["error"]["message"]


def test_visibility_rules_for_list_and_get(api: TwinProcess, owner: CookieClient, guest: CookieClient) -> None:
    ids = {v: owner.create_session(f"{v.title()} one", visibility=v)["id"] for v in ("PUBLIC", "PRIVATE", "UNLISTED")}
    with CookieClient(api.api_url) as anonymous:
        listed = anonymous.get("/api/sessions").json()["data"]
        assert {s["visibility"] for s in listed["sessions"]} == {"PUBLIC"}
        assert ids["PUBLIC"] in {s["id"] for s in listed["sessions"]}
        assert listed["total"] >= 1 and listed["offset"] == 0
        assert anonymous.get(f"/api/sessions/{ids['PUBLIC']}").status_code == 200
        denied = anonymous.get(f"/api/sessions/{ids['PRIVATE']}")
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "FORBIDDEN"
    mine = {s["id"] for s in owner.get("/api/sessions").json()["data"]["sessions"]}
    assert set(ids.values()) <= mine
    theirs = {s["id"] for s in guest.get("/api/sessions").json()["data"]["sessions"]}
    assert ids["PUBLIC"] in theirs and ids["PRIVATE"] not in theirs and ids["UNLISTED"] not in theirs
    assert guest.get(f"/api/sessions/{ids['PRIVATE']}").status_code == 403
    assert guest.get(f"/api/sessions/{ids['UNLISTED']}").status_code == 403
    missing = guest.get("/api/sessions/cdoesnotexist0000000000000")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"


def test_patch_and_delete_are_for_the_owner(api: TwinProcess, owner: CookieClient, guest: CookieClient) -> None:
    session_id = owner.create_session("Owned one")["id"]
    path = f"/api/sessions/{session_id}"
    assert guest.patch(path, {"name": "Taken over"}).status_code == 403
    assert guest.delete(path).json()["error"]["code"] == "FORBIDDEN"
    bad = owner.patch(path, {"visibility": "NOPE"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "VALIDATION_ERROR"
    patched = owner.patch(path, {"name": "Renamed one", "language": "go", "unknown": 1})
    assert patched.status_code == 200
    assert (patched.json()["data"]["session"]["name"], patched.json()["data"]["session"]["language"]) == (
        "Renamed one",
        "go",
    )
    assert owner.get(path).json()["data"]["session"]["name"] == "Renamed one"

    deleted = owner.delete(path)
    assert deleted.status_code == 200 and deleted.json()["success"] is True
    assert owner.get(path).status_code == 404  # soft-deleted: gone for everyone
    assert owner.delete(path).status_code == 404
    assert owner.patch(path, {"name": "Too late"}).status_code == 404
    assert session_id not in {s["id"] for s in owner.get("/api/sessions").json()["data"]["sessions"]}


def test_participants(api: TwinProcess, owner: CookieClient, guest: CookieClient) -> None:
    session_id = owner.create_session("Private pair", visibility="PRIVATE")["id"]
    path = f"/api/sessions/{session_id}/participants"
    assert guest.get(f"/api/sessions/{session_id}").status_code == 403

    added = owner.post(path, {"userId": guest.user["id"], "role": "VIEWER"})
    assert added.status_code == 201
    participant = added.json()["data"]["participant"]
    assert (participant["userId"], participant["role"], participant["leftAt"]) == (guest.user["id"], "VIEWER", None)
    detail = guest.get(f"/api/sessions/{session_id}")
    assert detail.status_code == 200
    assert {p["userId"] for p in detail.json()["data"]["session"]["participants"]} == {
        owner.user["id"],
        guest.user["id"],
    }

    again = owner.post(path, {"userId": guest.user["id"], "role": "EDITOR"})
    assert again.status_code == 400 and again.json()["error"]["code"] == "VALIDATION_ERROR"
    assert owner.post(path, {"userId": guest.user["id"], "role": "KING"}).status_code == 400
    assert owner.post(path, {"role": "EDITOR"}).status_code == 400
    assert owner.post(path, {"userId": "cnobody", "role": "EDITOR"}).status_code == 404
    assert owner.post("/api/sessions/cnosession/participants", {"userId": guest.user["id"]}).status_code == 404


def test_sessions_active_gauge_moves_by_one_per_create_and_delete(api: TwinProcess, owner: CookieClient) -> None:
    start = _gauge(api)
    created = [owner.create_session(f"Gauge {i}")["id"] for i in range(3)]
    assert _gauge(api) == start + 3
    assert owner.delete(f"/api/sessions/{created[0]}").status_code == 200
    assert _gauge(api) == start + 2
    # Failed attempts move nothing.
    assert owner.post("/api/sessions", {"name": "no"}).status_code == 400
    assert owner.delete(f"/api/sessions/{created[0]}").status_code == 404
    assert _gauge(api) == start + 2
