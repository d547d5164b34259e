"""Participant-gated writes and invitations, over real HTTP and Socket.IO against a twin.

The contract's rules: writing a file needs ownership or an ACTIVE participant row, whatever
the visibility; a Socket.IO `session:join` creates no row; a Socket.IO disconnect sets
left_at, so a collaborator who reconnects must be invited (and accept) again; invitations
are created by the owner or an EDITOR, accepted by the invitee alone, one pending per e-mail.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest

from codesync_load.twin_process import TwinProcess
from tests.twin._http import CookieClient, delta, isolated_twin, scrape, value, wait_for
from tests.twin.test_socketio_support import Peer, close_all


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwinProcess]:
    with isolated_twin(tmp_path_factory.mktemp("invitations"), "invitetwin") as twin:
        yield twin


@pytest.fixture
def third(api: TwinProcess) -> Iterator[CookieClient]:
    with CookieClient(api.api_url) as client:
        client.user = client.register(name="Third")
        yield client


def content_path(session_id: str, path: str = "src/main.py") -> str:
    return f"/api/sessions/{session_id}/files/{quote(path, safe='')}/content"


def invite(by: CookieClient, session_id: str, email: str, role: str = "EDITOR"):
    return by.post("/api/invitations", {"sessionId": session_id, "email": email, "role": role})


def invite_and_accept(owner: CookieClient, who: CookieClient, session_id: str, role: str = "EDITOR") -> dict:
    made = invite(owner, session_id, who.user["email"], role)
    assert made.status_code == 201, made.text
    accepted = who.post(f"/api/invitations/accept/{made.json()['data']['invitation']['token']}", {})
    assert accepted.status_code == 200, accepted.text
    return accepted.json()["data"]["participant"]


def forbidden(response) -> bool:
    return response.status_code == 403 and response.json()["error"] == {
        "message": response.json()["error"]["message"],
        "code": "FORBIDDEN",
        "statusCode": 403,
    }


def participant_ids(client: CookieClient, session_id: str) -> set[str]:
    return {p["userId"] for p in client.get(f"/api/sessions/{session_id}").json()["data"]["session"]["participants"]}


def join_over_socketio(api: TwinProcess, who: CookieClient, session_id: str, then_disconnect: bool = True) -> None:
    """Connect, join (confirmed by a chat echo), and disconnect again."""

    async def scenario() -> None:
        peer = Peer(api.api_url)
        try:
            await peer.connect(token=who.cookies["token"])
            await peer.join(session_id)
        finally:
            await close_all(peer)

    asyncio.run(scenario())


def test_a_socketio_join_alone_gives_no_right_to_write(api: TwinProcess, owner: CookieClient, guest) -> None:
    session_id = owner.create_session("Joined only", visibility="PUBLIC")["id"]
    assert owner.put(content_path(session_id), {"content": "the owner's"}).status_code == 200

    async def scenario() -> None:
        peer = Peer(api.api_url)
        try:
            await peer.connect(token=guest.cookies["token"])
            await peer.join(session_id)  # joined: its own chat came back
            # still connected and joined, and yet no participant row and no right to write
            assert participant_ids(owner, session_id) == {owner.user["id"]}
            put = await asyncio.to_thread(guest.put, content_path(session_id), {"content": "the guest's"})
            made = await asyncio.to_thread(guest.post, f"/api/sessions/{session_id}/files", {"name": "x.py"})
            assert forbidden(put), put.text
            assert forbidden(made), made.text
        finally:
            await close_all(peer)

    asyncio.run(scenario())
    assert owner.get(content_path(session_id)).json()["data"]["content"] == "the owner's"
    assert [f["path"] for f in owner.get(f"/api/sessions/{session_id}/files").json()["data"]["files"]] == [
        "src/main.py"
    ]


def test_invite_then_accept_makes_an_active_editor(api: TwinProcess, owner: CookieClient, guest) -> None:
    session_id = owner.create_session("Invited", visibility="PUBLIC")["id"]
    assert forbidden(guest.put(content_path(session_id), {"content": "early"}))
    made = invite(owner, session_id, guest.user["email"])
    assert made.status_code == 201
    invitation = made.json()["data"]["invitation"]
    assert re.fullmatch(r"[0-9a-f]{64}", invitation["token"])
    assert (invitation["email"], invitation["role"], invitation["sessionId"]) == (
        guest.user["email"],
        "EDITOR",
        session_id,
    )
    expires = datetime.fromisoformat(invitation["expiresAt"].replace("Z", "+00:00"))
    assert abs(expires - (datetime.now(UTC) + timedelta(days=7))) < timedelta(minutes=5)
    with CookieClient(api.api_url) as anonymous:  # verify is public
        verified = anonymous.get(f"/api/invitations/verify/{invitation['token']}")
        assert verified.status_code == 200
        assert verified.json()["data"]["invitation"]["session"]["name"] == "Invited"
        anonymous.get("/health")
        asks = anonymous.post(f"/api/invitations/accept/{invitation['token']}", {})
        assert asks.status_code == 200 and asks.json()["data"]["requiresAuth"] is True
    accepted = guest.post(f"/api/invitations/accept/{invitation['token']}", {})
    assert accepted.status_code == 200
    participant = accepted.json()["data"]["participant"]
    assert (participant["userId"], participant["role"], participant["leftAt"]) == (guest.user["id"], "EDITOR", None)
    assert guest.put(content_path(session_id), {"content": "the guest's"}).status_code == 200
    assert owner.get(content_path(session_id)).json()["data"]["content"] == "the guest's"
    again = guest.post(f"/api/invitations/accept/{invitation['token']}", {})
    assert again.status_code == 400 and again.json()["error"]["code"] == "VALIDATION_ERROR"
    assert owner.get(f"/api/invitations/verify/{invitation['token']}").status_code == 400
    unknown = guest.post("/api/invitations/accept/" + "0" * 64, {})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "NOT_FOUND"
    # an active participant cannot be invited again
    busy = invite(owner, session_id, guest.user["email"])
    assert busy.status_code == 400 and busy.json()["error"]["code"] == "VALIDATION_ERROR"


def test_a_reconnect_leaves_the_session_until_invited_again(api: TwinProcess, owner: CookieClient, guest) -> None:
    session_id = owner.create_session("Reconnect", visibility="PUBLIC")["id"]
    invite_and_accept(owner, guest, session_id)
    assert guest.put(content_path(session_id), {"content": "one"}).status_code == 200
    join_over_socketio(api, guest, session_id)  # joined, then disconnected: left_at is set
    wait_for(lambda: forbidden(guest.put(content_path(session_id), {"content": "two"})), what="write refused")
    assert guest.user["id"] not in participant_ids(owner, session_id)
    join_over_socketio(api, guest, session_id)  # joining again over Socket.IO does not help
    assert forbidden(guest.put(content_path(session_id), {"content": "two"}))
    participant = invite_and_accept(owner, guest, session_id)
    assert participant["leftAt"] is None
    assert guest.put(content_path(session_id), {"content": "three"}).status_code == 200
    assert owner.get(content_path(session_id)).json()["data"]["content"] == "three"


def test_one_pending_invitation_per_email_and_revoke(api: TwinProcess, owner: CookieClient, guest, third) -> None:
    session_id = owner.create_session("Pending", visibility="PRIVATE")["id"]
    first = invite(owner, session_id, guest.user["email"], "VIEWER")
    assert first.status_code == 201
    second = invite(owner, session_id, guest.user["email"], "EDITOR")
    assert second.status_code == 400 and second.json()["error"]["code"] == "VALIDATION_ERROR"
    listed = owner.get(f"/api/invitations/session/{session_id}")
    assert listed.status_code == 200
    assert [i["email"] for i in listed.json()["data"]["invitations"]] == [guest.user["email"]]
    invitation = first.json()["data"]["invitation"]
    assert forbidden(third.get(f"/api/invitations/session/{session_id}"))
    assert forbidden(third.delete(f"/api/invitations/{invitation['id']}"))
    revoked = owner.delete(f"/api/invitations/{invitation['id']}")
    assert revoked.status_code == 200 and revoked.json()["success"] is True
    assert owner.get(f"/api/invitations/verify/{invitation['token']}").status_code == 404
    gone = guest.post(f"/api/invitations/accept/{invitation['token']}", {})
    assert gone.status_code == 404
    assert guest.get(f"/api/sessions/{session_id}").status_code == 403  # PRIVATE, and not a participant
    assert owner.delete(f"/api/invitations/{invitation['id']}").status_code == 404
    assert invite(owner, session_id, guest.user["email"], "VIEWER").status_code == 201  # none pending now


def test_who_may_invite_accept_and_add(api: TwinProcess, owner: CookieClient, guest, third) -> None:
    session_id = owner.create_session("Who may", visibility="PUBLIC")["id"]
    assert forbidden(invite(third, session_id, third.user["email"]))  # a stranger invites itself
    assert forbidden(invite(third, session_id, guest.user["email"]))
    # the token is the guest's: the third user cannot use it
    token = invite(owner, session_id, guest.user["email"]).json()["data"]["invitation"]["token"]
    assert forbidden(third.post(f"/api/invitations/accept/{token}", {}))
    mismatch = third.post(f"/api/invitations/accept/{token}", {"email": third.user["email"]})
    assert mismatch.status_code == 400
    assert third.user["id"] not in participant_ids(owner, session_id)
    assert forbidden(third.put(content_path(session_id), {"content": "x"}))
    # nobody adds themselves
    participants = f"/api/sessions/{session_id}/participants"
    assert forbidden(third.post(participants, {"userId": third.user["id"], "role": "OWNER"}))
    assert third.user["id"] not in participant_ids(owner, session_id)
    # a VIEWER participant may neither invite, add, nor write; it cannot raise its own role
    invite_and_accept(owner, third, session_id, role="VIEWER")
    assert forbidden(invite(third, session_id, "somebody@example.com"))
    assert forbidden(third.post(participants, {"userId": guest.user["id"], "role": "EDITOR"}))
    assert forbidden(third.put(content_path(session_id), {"content": "x"}))
    raised = third.post(participants, {"userId": third.user["id"], "role": "EDITOR"})
    assert raised.status_code in (400, 403)
    # an EDITOR participant may invite
    assert guest.post(f"/api/invitations/accept/{token}", {}).status_code == 200
    assert invite(guest, session_id, "friend-of-guest@example.com").status_code == 201
    assert invite(owner, "cnosuchsession000", guest.user["email"]).status_code == 404
    assert invite(owner, "not a cuid", guest.user["email"]).status_code == 400


def test_invitation_routes_are_metered(api: TwinProcess, owner: CookieClient, guest) -> None:
    url = api.api_url + "/metrics"
    session_id = owner.create_session("Metered", visibility="PUBLIC")["id"]
    before = scrape(url)
    made = invite(owner, session_id, guest.user["email"])
    token = made.json()["data"]["invitation"]["token"]
    assert guest.post(f"/api/invitations/accept/{token}", {}).status_code == 200
    assert owner.get(f"/api/invitations/session/{session_id}").status_code == 200
    assert owner.get(f"/api/invitations/verify/{token}").status_code == 400
    after = scrape(url)

    def moved(method: str, route: str, status: str) -> float:
        return delta(before, after, "codesync_http_requests_total", method=method, route=route, status_code=status)

    assert moved("POST", "/api/invitations", "201") == 1
    assert moved("POST", "/api/invitations/accept/:token", "200") == 1
    assert moved("GET", "/api/invitations/session/:id", "200") == 1
    assert moved("GET", "/api/invitations/verify/:token", "400") == 1
    assert delta(before, after, "codesync_errors_total", code="VALIDATION_ERROR") == 1
    # one create and one accept update of the invitation table
    assert delta(before, after, "codesync_db_queries_total", operation="create", model="SessionInvitation") == 1
    assert delta(before, after, "codesync_db_queries_total", operation="update", model="SessionInvitation") == 1
    assert value(after, "codesync_db_queries_total", operation="create", model="SessionInvitation", status="success")


def test_authz_open_fault_lets_strangers_in(twin_factory) -> None:
    twin = twin_factory(faults=["authz-open"], name="authzopen")
    with CookieClient(twin.api_url) as owner, CookieClient(twin.api_url) as stranger:
        owner.user = owner.register(name="Owner")
        stranger.user = stranger.register(name="Stranger")
        session_id = owner.create_session("Open doors", visibility="PUBLIC")["id"]
        added = stranger.post(
            f"/api/sessions/{session_id}/participants", {"userId": stranger.user["id"], "role": "OWNER"}
        )
        assert added.status_code == 201
        assert stranger.put(content_path(session_id), {"content": "mine"}).status_code == 200
