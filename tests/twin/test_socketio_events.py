"""Socket.IO events against a real twin process: who hears what, what is stored, what is refused.

One twin per module (SQLite, in-process state) and three users registered over REST; every
test makes its own session so the tests do not see each other's rooms. The disconnect test
also runs against PostgreSQL. Absence of an event is checked behind a chat echo: the twin
handles one connection's events in order, so anything sent to that client comes first.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import requests

from codesync_load.twin_process import TwinProcess
from tests.twin._http import isolated_twin, scrape, value, wait_for
from tests.twin.test_socketio_support import Peer, User, close_all, register_user


@dataclass
class Target:
    twin: TwinProcess
    db_path: Path

    @property
    def url(self) -> str:
        return self.twin.api_url

    def row(self, sql: str, *params: str) -> tuple | None:
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True) as conn:
            return conn.execute(sql, params).fetchone()

    def participants(self, session_id: str) -> float:
        return value(scrape(self.url + "/metrics"), "codesync_session_participants", session_id=session_id)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    work = tmp_path_factory.mktemp("socketio")
    with isolated_twin(work, "siotwin") as twin:
        yield Target(twin, work / "siotwin.sqlite3")


@pytest.fixture(scope="module")
def users(target: Target) -> dict[str, User]:
    return {name.lower(): register_user(target.url, name) for name in ("Alice", "Bob", "Carol")}


def new_session(user: User, visibility: str = "PUBLIC") -> str:
    return user.api.create_session(name="Socket session", visibility=visibility)["id"]


async def connected(target: Target, *people: User) -> list[Peer]:
    peers = [Peer(target.url) for _ in people]
    for peer, person in zip(peers, people, strict=True):
        await peer.connect(token=person.token)
    return peers


def test_long_polling_client_takes_part_like_a_websocket_one(target: Target, users: dict[str, User]) -> None:
    alice, bob = users["alice"], users["bob"]
    session_id = new_session(alice)

    async def scenario() -> None:
        a, b = Peer(target.url), Peer(target.url)
        try:
            await a.connect(token=alice.token, transport="polling")
            await b.connect(token=bob.token)
            assert a.sio.transport() == "polling"
            await b.join(session_id)
            await a.join(session_id)
            assert (await b.wait_for("user:joined"))["userId"] == alice.id
            echo = await b.chat(session_id, "to the poller")
            assert await a.wait_for("chat:message:new", where=lambda p: p["id"] == echo["id"]) == echo
            # The server answers the poll it holds when the client closes (python-engineio alone
            # would hold it to the ping timeout, ~30 s, and the client's close with it).
            started = time.monotonic()
            await a.close()
            assert time.monotonic() - started < 3.0
            assert (await b.wait_for("user:left"))["userId"] == alice.id
        finally:
            await close_all(a, b)

    asyncio.run(scenario())


def test_packet_over_the_size_cap_drops_only_that_connection(target: Target, users: dict[str, User]) -> None:
    """Past Engine.IO's 1 MB packet cap (Socket.IO's maxHttpBufferSize) the connection is closed."""
    alice, bob = users["alice"], users["bob"]
    session_id = new_session(alice)
    url = target.url + "/metrics"

    async def scenario() -> None:
        before = scrape(url)
        a, b = await connected(target, alice, bob)
        try:
            await a.join(session_id)
            await b.join(session_id)
            await b.emit("chat:message:send", {"sessionId": session_id, "content": "x" * 1_200_000})
            left = await a.wait_for("user:left")
            assert left["userId"] == bob.id
            await asyncio.to_thread(wait_for, lambda: not b.sio.connected, 10.0, 0.05, "oversized sender dropped")
            assert (await a.chat(session_id, "still fine"))["content"] == "still fine"
            assert b.named("chat:message:new")[-1]["content"] != "x" * 1_200_000
        finally:
            await close_all(a, b)
        await asyncio.to_thread(
            wait_for,
            lambda: (
                value(scrape(url), "codesync_websocket_connections_active", type="socketio")
                == value(before, "codesync_websocket_connections_active", type="socketio")
            ),
            10.0,
            0.05,
            "active connections back to the start",
        )

    asyncio.run(scenario())


def test_join_tells_the_others_and_not_the_joiner(target: Target, users: dict[str, User]) -> None:
    alice, bob = users["alice"], users["bob"]
    session_id = new_session(alice)

    async def scenario() -> None:
        a, b = await connected(target, alice, bob)
        try:
            await a.join(session_id)
            await b.join(session_id)
            joined = await a.wait_for("user:joined")
            assert (joined["userId"], joined["name"], joined["sessionId"]) == (bob.id, "Bob", session_id)
            note = await a.wait_for("notification")
            assert note["type"] == "join" and note["userId"] == bob.id and note["sessionId"] == session_id
            assert note["message"] == "Bob joined the session" and note["read"] is False
            await a.chat(session_id)  # barrier: nothing more is on its way to Alice
            assert len(a.named("user:joined")) == 1 and len(a.named("notification")) == 1
            assert b.named("user:joined") == [] and b.named("notification") == []
            assert target.participants(session_id) == 2
        finally:
            await close_all(a, b)

    asyncio.run(scenario())


def test_chat_is_stored_and_echoed_to_the_whole_room(target: Target, users: dict[str, User]) -> None:
    alice, bob, carol = users["alice"], users["bob"], users["carol"]
    session_id = new_session(alice)
    elsewhere = new_session(carol)

    async def scenario() -> None:
        a, b, c = await connected(target, alice, bob, carol)
        try:
            await a.join(session_id)
            await b.join(session_id)
            await c.join(elsewhere)
            mine = await a.chat(session_id, "print('hi')", type="CODE")
            assert mine["sessionId"] == session_id and mine["userId"] == alice.id
            assert (mine["content"], mine["type"], mine["replyTo"]) == ("print('hi')", "CODE", None)
            assert mine["id"] and mine["createdAt"]
            seen_by_bob = await b.wait_for("chat:message:new", where=lambda p: p["id"] == mine["id"])
            assert seen_by_bob == mine
            reply = await b.chat(session_id, "nice", replyTo=mine["id"])
            assert reply["replyTo"] == mine["id"] and reply["type"] == "TEXT"
            assert await a.wait_for("chat:message:new", where=lambda p: p["id"] == reply["id"]) == reply
            stored = target.row(
                "SELECT session_id, user_id, content, type, reply_to FROM chat_messages WHERE id = ?", reply["id"]
            )
            assert stored == (session_id, bob.id, "nice", "TEXT", mine["id"])
            await c.chat(elsewhere)  # barrier: Carol, in another room, heard none of it
            assert all(p["sessionId"] == elsewhere for p in c.named("chat:message:new"))
        finally:
            await close_all(a, b, c)

    asyncio.run(scenario())


def test_reaction_reaches_the_room_of_the_message(target: Target, users: dict[str, User]) -> None:
    alice, bob, carol = users["alice"], users["bob"], users["carol"]
    session_id = new_session(alice)

    async def scenario() -> None:
        a, b, c = await connected(target, alice, bob, carol)
        try:
            await a.join(session_id)
            await b.join(session_id)
            await c.join(new_session(carol))
            message = await a.chat(session_id, "react to me")
            await b.emit("chat:message:react", {"messageId": message["id"], "emoji": "🎉"})
            expected = {"messageId": message["id"], "emoji": "🎉", "userId": bob.id}
            assert await a.wait_for("message:reaction") == expected
            assert await b.wait_for("message:reaction") == expected  # the room, reactor included
            await c.emit("chat:message:react", {"messageId": message["id"], "emoji": "x"})
            error = await c.wait_for("error")
            assert error["message"].startswith("chat:message:react: not joined to session")
            assert c.named("message:reaction") == []
        finally:
            await close_all(a, b, c)

    asyncio.run(scenario())


def test_cursor_and_typing_reach_the_others_only(target: Target, users: dict[str, User]) -> None:
    alice, bob = users["alice"], users["bob"]
    session_id = new_session(alice)

    async def scenario() -> None:
        a, b = await connected(target, alice, bob)
        try:
            await a.join(session_id)
            await b.join(session_id)
            await a.emit("cursor:update", {"sessionId": session_id, "line": 3, "column": 14})
            await a.emit("typing:start", session_id)
            await a.emit("typing:stop", {"sessionId": session_id})  # the object form is accepted too
            move = await b.wait_for("cursor:move")
            assert (move["userId"], move["line"], move["column"], move["sessionId"]) == (alice.id, 3, 14, session_id)
            assert await b.wait_for("user:typing") == {"userId": alice.id, "name": "Alice", "sessionId": session_id}
            stopped = await b.wait_for("user:stopped-typing")
            assert stopped == {"userId": alice.id, "name": "Alice", "sessionId": session_id}
            await a.chat(session_id)  # barrier
            assert [name for name, _ in a.events if name in ("cursor:move", "user:typing", "user:stopped-typing")] == []
            assert [name for name, _ in b.events if name == "cursor:move"] == ["cursor:move"]
        finally:
            await close_all(a, b)

    asyncio.run(scenario())


def test_leave_tells_the_others_and_ends_membership(target: Target, users: dict[str, User]) -> None:
    alice, bob = users["alice"], users["bob"]
    session_id = new_session(alice)

    async def scenario() -> None:
        a, b = await connected(target, alice, bob)
        try:
            await a.join(session_id)
            await b.join(session_id)
            assert target.participants(session_id) == 2
            await b.emit("session:leave", session_id)
            left = await a.wait_for("user:left")
            assert (left["userId"], left["sessionId"]) == (bob.id, session_id)
            assert target.participants(session_id) == 1
            await b.emit("chat:message:send", {"sessionId": session_id, "content": "still here?"})
            error = await b.wait_for("error")
            assert error["message"] == (
                f"chat:message:send: not joined to session {session_id}; emit session:join first"
            )
            assert b.named("user:left") == []
            await a.chat(session_id)  # barrier: Bob's refused message never reached Alice
            assert [p["content"] for p in a.named("chat:message:new")].count("still here?") == 0
        finally:
            await close_all(a, b)

    asyncio.run(scenario())


def _disconnect_scenario(
    url: str, alice: User, bob: User, session_id: str, left_at: Callable[[str], tuple[bool, object]]
) -> None:
    """Bob, a participant by invitation, drops his connection: the row says he left, Alice hears
    it, the gauge drops 2 -> 1."""
    made = alice.api.post("/api/invitations", {"sessionId": session_id, "email": bob.email, "role": "EDITOR"})
    assert made.status_code == 201, made.text
    accepted = bob.api.post(f"/api/invitations/accept/{made.json()['data']['invitation']['token']}", {})
    assert accepted.status_code == 200, accepted.text

    def participants() -> float:
        return value(scrape(url + "/metrics"), "codesync_session_participants", session_id=session_id)

    async def scenario() -> None:
        a, b = Peer(url), Peer(url)
        try:
            await a.connect(token=alice.token)
            await b.connect(token=bob.token)
            await a.join(session_id)
            await b.join(session_id)
            assert participants() == 2
            assert left_at(bob.id) == (True, None)
            await b.close()
            left = await a.wait_for("user:left")
            assert (left["userId"], left["name"], left["sessionId"]) == (bob.id, "Bob", session_id)
            await asyncio.to_thread(wait_for, lambda: participants() == 1, 10.0, 0.05, "participants gauge at 1")
            await asyncio.to_thread(wait_for, lambda: left_at(bob.id)[1] is not None, 10.0, 0.05, "left_at set")
            assert left_at(alice.id) == (True, None)  # the owner is still in
        finally:
            await close_all(a, b)

    asyncio.run(scenario())


def test_disconnect_marks_the_participant_left(target: Target, users: dict[str, User]) -> None:
    alice, bob = users["alice"], users["bob"]
    session_id = new_session(alice)

    def left_at(user_id: str) -> tuple[bool, str | None]:
        row = target.row(
            "SELECT left_at FROM session_participants WHERE session_id = ? AND user_id = ?", session_id, user_id
        )
        return (row is not None, row[0] if row else None)

    _disconnect_scenario(target.url, alice, bob, session_id, left_at)


def test_disconnect_marks_the_participant_left_in_postgresql(twin_factory, pg_url: str) -> None:
    twin = twin_factory(env={"DATABASE_URL": pg_url}, name="siopg")
    alice, bob = register_user(twin.api_url, "Alice"), register_user(twin.api_url, "Bob")
    session_id = new_session(alice)

    def left_at(user_id: str) -> tuple[bool, str | None]:
        with psycopg.connect(pg_url) as conn:
            row = conn.execute(
                "SELECT left_at FROM session_participants WHERE session_id = %s AND user_id = %s",
                (session_id, user_id),
            ).fetchone()
        return (row is not None, row[0] if row else None)

    _disconnect_scenario(twin.api_url, alice, bob, session_id, left_at)


def test_storage_failure_answers_error_and_the_connection_goes_on(twin_factory, pg_url: str) -> None:
    """PostgreSQL refuses NUL characters in text: a real storage error, answered as `error`."""
    twin = twin_factory(env={"DATABASE_URL": pg_url}, name="siopgfail")
    alice = register_user(twin.api_url, "Alice")
    session_id = new_session(alice)

    async def scenario() -> None:
        a = Peer(twin.api_url)
        try:
            await a.connect(token=alice.token)
            await a.join(session_id)
            await a.emit("chat:message:send", {"sessionId": session_id, "content": "nul \x00 byte"})
            assert await a.wait_for("error") == {"message": "chat:message:send: failed, please retry"}
            assert (await a.chat(session_id, "after the failure"))["content"] == "after the failure"
            assert [p["content"] for p in a.named("chat:message:new")].count("nul \x00 byte") == 0
        finally:
            await close_all(a)

    asyncio.run(scenario())
    with psycopg.connect(pg_url) as conn:
        stored = conn.execute("SELECT content FROM chat_messages WHERE session_id = %s", (session_id,)).fetchall()
    assert "after the failure" in [row[0] for row in stored] and len(stored) == 2  # join echo + this one


BAD_PAYLOADS: list[tuple[str, tuple, str]] = [
    ("session:join", (), "sessionId must be a non-empty string"),
    ("session:join", (None,), "sessionId must be a non-empty string"),
    ("session:join", (42,), "sessionId must be a non-empty string"),
    ("session:join", ("s" * 1000,), "sessionId must be a non-empty string of at most 128 characters"),
    ("session:join", ("no-such-session",), "session no-such-session not found"),
    ("session:leave", ({"sessionId": ["x"]},), "sessionId must be a non-empty string"),
    ("chat:message:send", ("just text",), "payload must be an object"),
    ("chat:message:send", ({"sessionId": "{S}"},), "content must be a string of 1-5000 characters"),
    ("chat:message:send", ({"sessionId": "{S}", "content": ""},), "content must be a string of 1-5000"),
    ("chat:message:send", ({"sessionId": "{S}", "content": 5},), "content must be a string of 1-5000"),
    ("chat:message:send", ({"sessionId": "{S}", "content": "x" * 5001},), "content must be a string of 1-5000"),
    ("chat:message:send", ({"sessionId": "{S}", "content": "x" * 400_000},), "content must be a string"),
    ("chat:message:send", ({"sessionId": "{S}", "content": "hi", "type": "VIDEO"},), "type must be one of TEXT"),
    ("chat:message:send", ({"sessionId": "{S}", "content": "hi", "replyTo": 7},), "replyTo must be"),
    ("chat:message:send", ({"sessionId": "{OTHER}", "content": "hi"},), "not joined to session {OTHER}"),
    ("chat:message:react", (None,), "payload must be an object {messageId, emoji}"),
    ("chat:message:react", ({"messageId": "nope", "emoji": "x"},), "message nope not found"),
    ("chat:message:react", ({"messageId": "nope", "emoji": ""},), "emoji must be a string"),
    ("cursor:update", ({"sessionId": "{S}", "line": "3", "column": 1},), "line must be an integer"),
    ("cursor:update", ({"sessionId": "{S}", "line": True, "column": 1},), "line must be an integer"),
    ("cursor:update", ({"sessionId": "{S}", "line": 1, "column": -1},), "column must be an integer"),
    ("cursor:update", ({"sessionId": "{OTHER}", "line": 1, "column": 1},), "not joined to session {OTHER}"),
    ("typing:start", (["a", "list"],), "sessionId must be a non-empty string"),
    ("typing:stop", ("{OTHER}",), "not joined to session {OTHER}"),
    ("session:leave", ("{OTHER}",), "not joined to session {OTHER}"),
    ("session:join", ("{PRIVATE}",), "access to session {PRIVATE} denied"),
]


def _fill(value: object, names: dict[str, str]) -> object:
    if isinstance(value, str):
        for key, replacement in names.items():
            value = value.replace("{" + key + "}", replacement)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return type(value)(_fill(v, names) for v in value)
    return value


def test_bad_payloads_get_an_error_event_and_the_server_stays_up(target: Target, users: dict[str, User]) -> None:
    alice, carol = users["alice"], users["carol"]
    names = {"S": new_session(alice), "OTHER": new_session(carol), "PRIVATE": new_session(carol, "PRIVATE")}

    async def scenario() -> None:
        (a,) = await connected(target, alice)
        try:
            await a.join(names["S"])
            before = scrape(target.url + "/metrics")
            for number, (event, args, expected) in enumerate(BAD_PAYLOADS, start=1):
                await a.emit(event, *_fill(args, names))
                error = await a.wait_for("error", count=number)
                assert set(error) == {"message"}, error
                assert error["message"].startswith(f"{event}: {_fill(expected, names)}"), (event, args, error)
            # Still connected, still served; the failures moved no message counter.
            echo = await a.chat(names["S"], "after the storm")
            assert echo["content"] == "after the storm"
            after = scrape(target.url + "/metrics")
            for direction, moved in (("inbound", 0), ("outbound", 1)):
                labels = {"type": "socketio", "direction": direction}
                assert (
                    value(after, "codesync_websocket_messages_total", **labels)
                    - value(before, "codesync_websocket_messages_total", **labels)
                    == moved
                )
            assert len(a.named("error")) == len(BAD_PAYLOADS)
        finally:
            await close_all(a)
        assert requests.get(target.url + "/health", timeout=5).status_code == 200

    asyncio.run(scenario())


def test_metrics_move_exactly_with_connections_and_messages(target: Target, users: dict[str, User]) -> None:
    alice, bob, carol = users["alice"], users["bob"], users["carol"]
    room, side = new_session(alice), new_session(carol)
    url = target.url + "/metrics"

    def moved(before: dict, after: dict, name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    async def scenario() -> None:
        before = scrape(url)
        a, b, c = await connected(target, alice, bob, carol)
        try:
            mid = scrape(url)
            assert moved(before, mid, "codesync_websocket_connections_active", type="socketio") == 3
            assert moved(before, mid, "codesync_websocket_connections_total", type="socketio") == 3
            chats = 0
            for peer in (a, b, c):
                await peer.join(room)  # one join + one chat echo each
                chats += 1
            await c.join(side)
            chats += 1
            await c.emit("session:leave", side)
            message = await a.chat(room, "count me")
            chats += 1
            for peer, emoji in ((b, "+1"), (c, "eyes")):
                await peer.emit("chat:message:react", {"messageId": message["id"], "emoji": emoji})
            await a.wait_for("message:reaction", count=2)
            assert target.participants(room) == 3 and target.participants(side) == 0
            after_traffic = scrape(url)
            assert (
                moved(before, after_traffic, "codesync_websocket_messages_total", type="socketio", direction="inbound")
                == 4 + 1
            )  # joins + leaves
            assert (
                moved(before, after_traffic, "codesync_websocket_messages_total", type="socketio", direction="outbound")
                == chats + 2
            )  # chat broadcasts + reactions
        finally:
            await close_all(a, b, c)
        await asyncio.to_thread(
            wait_for,
            lambda: moved(before, scrape(url), "codesync_websocket_connections_active", type="socketio") == 0,
            10.0,
            0.05,
            "socketio active connections back to the start",
        )
        end = scrape(url)
        assert moved(before, end, "codesync_websocket_connections_total", type="socketio") == 3
        assert value(end, "codesync_session_participants", session_id=room) == 0

    asyncio.run(scenario())
