"""The Socket.IO client against the twin as a real process: join, chat echo, error events.

Each test registers real users over REST (the JWT comes from the `token` cookie) and opens
real websocket-transport connections.
"""

from __future__ import annotations

import uuid

import pytest

from scenarios.clients.rest import RestClient
from scenarios.clients.socketio import (
    SioConnectError,
    SioDisconnectedAtConnect,
    SioEvent,
    SioRateLimited,
    SioServerError,
    SocketIOClient,
)


def user(base_url: str) -> RestClient:
    api = RestClient(base_url)
    api.register(f"s{uuid.uuid4().hex[:10]}@example.test", "Secret123", "Sio User").raise_for_error()
    return api


def sio_for(api: RestClient, base_url: str, **kwargs) -> SocketIOClient:
    assert api.user is not None
    return SocketIOClient(base_url, api.token, user_id=api.user["id"], timeout=5.0, **kwargs)


def test_join_and_chat_round_trip_with_counts(twin) -> None:
    owner = user(twin.api_url)
    guest = user(twin.api_url)
    session_id = owner.create_session("chat room").raise_for_error().data["session"]["id"]
    events: list[SioEvent] = []
    a = sio_for(owner, twin.api_url, observers=(events.append,))
    b = sio_for(guest, twin.api_url)
    try:
        assert a.connect() > 0 and a.connected
        b.connect()
        first = a.join_confirmed(session_id)
        assert first.rtt > 0 and first.message["sessionId"] == session_id
        b.join_confirmed(session_id)
        a.wait_for("user:joined", 1)  # b's join, heard by a
        trips = [a.chat(session_id, f"hello {i}") for i in range(3)]
        assert [t.message["content"] for t in trips] == ["hello 0", "hello 1", "hello 2"]
        assert all(0 < t.rtt < 5 for t in trips)
        # b hears a's three messages, its own join probe and a's join probe only if joined then
        b.wait_for("chat:message:new", 1 + 3)
        a.cursor(session_id, 4, 2)
        a.typing(session_id, True)
        a.typing(session_id, False)
        a.react(trips[0].message["id"], "+1")
        b.wait_for("cursor:move", 1)
        b.wait_for("user:typing", 1)
        b.wait_for("user:stopped-typing", 1)
        b.wait_for("message:reaction", 1)
        a.wait_for("message:reaction", 1)  # reactions go to the whole room
        a.leave(session_id)
        b.wait_for("user:left", 1)
    finally:
        a.disconnect()
        b.disconnect()
    assert a.sent == {
        "session:join": 1,
        "chat:message:send": 4,
        "cursor:update": 1,
        "typing:start": 1,
        "typing:stop": 1,
        "chat:message:react": 1,
        "session:leave": 1,
    }
    # a's own probe + 3 messages, plus b's probe (a had joined before b)
    assert a.received["chat:message:new"] == 5
    assert a.errors == []
    outbound = [e.name for e in events if e.direction == "outbound"]
    assert len(outbound) == sum(a.sent.values())
    inbound = [e.name for e in events if e.direction == "inbound"]
    assert len(inbound) == sum(a.received.values())


def test_error_event_is_collected_and_fails_the_chat(twin) -> None:
    api = user(twin.api_url)
    sio = sio_for(api, twin.api_url)
    sio.connect()
    try:
        with pytest.raises(SioServerError, match="not joined"):
            sio.chat("no-such-session", "lost")  # never joined: the server answers `error`
        sio.join("no-such-session")
        sio.wait_for("error", 2)
        assert len(sio.errors) == 2
        assert "not found" in sio.errors[1]["message"]
    finally:
        sio.disconnect()


def test_bad_token_is_refused_with_the_servers_message(twin) -> None:
    sio = SocketIOClient(twin.api_url, "not-a-jwt", timeout=5.0)
    with pytest.raises(SioConnectError, match="Authentication error: invalid token"):
        sio.connect()
    assert not sio.connected


def test_the_101st_connection_in_a_minute_is_rate_limited(twin) -> None:
    api = user(twin.api_url)
    for _ in range(100):  # the contract: 100 Socket.IO connections per 60 s per user
        sio = sio_for(api, twin.api_url)
        sio.connect(refusal_window=0)
        sio.disconnect()
    refused = sio_for(api, twin.api_url)
    # CodeSync's refusal shape: accepted, then disconnected by the server at once
    with pytest.raises(SioDisconnectedAtConnect, match=r"the server disconnected it \d+ ms after connect"):
        refused.connect()
    assert isinstance(SioDisconnectedAtConnect("x"), SioRateLimited)  # counted as rate-limited by callers
