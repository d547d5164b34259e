"""The twin's storage against real SQLite files and a real PostgreSQL database.

Each test runs in both modes (parametrised `backend`), opens stores the way the twin does
(`open_store`), and checks what was written by reading it back, through a second
connection or after reopening, and what the metered executor counted.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from pathlib import Path

import psycopg
import pytest

from codesync_load.errors import HarnessError
from codesync_load.exposition import Samples, parse_samples
from twin.config import TwinConfig
from twin.faults import ActiveFaults
from twin.metrics import TwinMetrics
from twin.storage import StoreConflict, open_store, split_document


def _metrics() -> TwinMetrics:
    return TwinMetrics("api", ActiveFaults())


def _samples(metrics: TwinMetrics) -> Samples:
    return parse_samples(metrics.exposition().decode())


@pytest.fixture(params=["sqlite", "postgresql"])
def config(request: pytest.FixtureRequest, tmp_path: Path) -> TwinConfig:
    if request.param == "sqlite":
        return TwinConfig(sqlite_path=tmp_path / "store.sqlite3")
    return TwinConfig(database_url=request.getfixturevalue("pg_url"))


def run(coro):
    return asyncio.run(coro)


def test_split_document() -> None:
    assert split_document("cabc:src/main.py") == ("cabc", "src/main.py")
    assert split_document("cabc:a:b") == ("cabc", "a:b")
    assert split_document("cabc") == ("cabc", "")


def test_yjs_state_round_trip_across_connections(config: TwinConfig, run_id: str) -> None:
    doc = f"unknown-session-{run_id}-{id(config)}:src/deep/file.py"

    async def scenario() -> None:
        writer = await open_store(config, _metrics())
        reader = await open_store(config, _metrics())
        try:
            assert await reader.load_yjs_state(doc) is None
            await writer.save_yjs_state(doc, b"\x00\x01first")
            assert await reader.load_yjs_state(doc) == b"\x00\x01first"
            await writer.save_yjs_state(doc, bytes(range(256)))  # full state replaced, not appended
            assert await reader.load_yjs_state(doc) == bytes(range(256))
            # A document name without ':' is a session with path "".
            await writer.save_yjs_state(f"bare-{run_id}-{id(config)}", b"room")
            assert await reader.load_yjs_state(f"bare-{run_id}-{id(config)}") == b"room"
        finally:
            await writer.close()
            await reader.close()
        # Reopened (a twin restart): still there.
        again = await open_store(config, _metrics())
        try:
            assert await again.load_yjs_state(doc) == bytes(range(256))
        finally:
            await again.close()

    run(scenario())


def test_every_query_is_metered_with_prisma_names(config: TwinConfig) -> None:
    email = f"dup-{uuid.uuid4().hex[:8]}@example.com"

    async def scenario() -> Samples:
        metrics = _metrics()
        store = await open_store(config, metrics)
        try:
            before = _samples(metrics)
            await store.save_yjs_state("cmeter:a.py", b"x")
            await store.load_yjs_state("cmeter:a.py")
            await store.load_yjs_state("cmeter:a.py")
            user = await store.create_user(email, "Dup", "hash")
            assert user["email"] == email
            with pytest.raises(StoreConflict):
                await store.create_user(email, "Dup again", "hash")
            after = _samples(metrics)
            return {k: after.get(k, 0) - before.get(k, 0) for k in after}
        finally:
            await store.close()

    moved = run(scenario())

    def count(operation: str, model: str, status: str) -> float:
        key = (
            "codesync_db_queries_total",
            frozenset({"operation": operation, "model": model, "status": status}.items()),
        )
        return moved.get(key, 0)

    assert count("upsert", "SessionFile", "success") == 1
    assert count("findUnique", "SessionFile", "success") == 2
    assert count("create", "User", "success") == 1
    assert count("create", "User", "error") == 1
    hist = (
        "codesync_db_query_duration_seconds_count",
        frozenset({"operation": "findUnique", "model": "SessionFile"}.items()),
    )
    assert moved[hist] == 2


def test_sessions_participants_and_chat(config: TwinConfig) -> None:
    async def scenario() -> None:
        store = await open_store(config, _metrics())
        try:
            owner = await store.create_user(f"owner-{id(store)}@example.com", "Owner", "h")
            guest = await store.create_user(f"guest-{id(store)}@example.com", "Guest", "h")
            private = await store.create_session(owner["id"], "Private one", None, "go", "PRIVATE")
            assert private["ownerId"] == owner["id"]
            assert [p["userId"] for p in private["participants"]] == [owner["id"]]
            assert private["participants"][0]["role"] == "OWNER"
            assert await store.can_access_session(private["id"], owner["id"])
            assert not await store.can_access_session(private["id"], guest["id"])
            assert not await store.can_access_session(private["id"], None)

            await store.add_participant(private["id"], guest["id"], "EDITOR")
            assert await store.can_access_session(private["id"], guest["id"])
            assert await store.active_role(private["id"], guest["id"]) == "EDITOR"
            await store.mark_participant_left(private["id"], guest["id"])
            assert not await store.can_access_session(private["id"], guest["id"])
            assert await store.active_role(private["id"], guest["id"]) is None
            # Accepting an invitation re-activates the row with the invitation's role.
            invitation = await store.create_invitation(private["id"], "guest@example.com", "VIEWER", 60.0)
            assert await store.pending_invitation(private["id"], "guest@example.com") == invitation
            await store.accept_invitation(invitation, guest["id"])
            assert await store.active_role(private["id"], guest["id"]) == "VIEWER"
            assert await store.pending_invitation(private["id"], "guest@example.com") is None
            assert (await store.get_invitation(token=invitation["token"]))["acceptedAt"] is not None
            assert await store.delete_invitation(invitation["id"])
            assert await store.get_invitation(invitation_id=invitation["id"]) is None
            assert (await store.get_participant(private["id"], owner["id"]))["role"] == "OWNER"

            message = await store.add_chat_message(private["id"], guest["id"], "hello", "CODE", None)
            assert message["type"] == "CODE" and message["replyTo"] is None
            reply = await store.add_chat_message(private["id"], owner["id"], "hi", "TEXT", message["id"])
            assert await store.get_chat_message(reply["id"]) == reply
            assert await store.get_chat_message("missing") is None
            assert await store.get_user(guest["id"]) == guest  # no password hash in it
            assert "passwordHash" not in guest

            before = await store.count_active_sessions()
            assert await store.soft_delete_session(private["id"])
            assert not await store.soft_delete_session(private["id"])
            assert await store.get_session(private["id"]) is None
            assert not await store.can_access_session(private["id"], owner["id"])
            assert await store.count_active_sessions() == before - 1
        finally:
            await store.close()

    run(scenario())


def test_sqlite_file_is_in_wal_mode_with_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "wal.sqlite3"
    config = TwinConfig(sqlite_path=path)

    async def scenario() -> None:
        store = await open_store(config, _metrics())
        await store.close()
        store = await open_store(config, _metrics())  # schema creation is idempotent
        await store.close()

    run(scenario())
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        foreign = conn.execute("PRAGMA foreign_key_list(session_files)").fetchall()
    assert {"users", "sessions", "session_participants", "session_files", "chat_messages", "token_blacklist"} <= tables
    assert foreign == []


def test_postgres_schema_has_left_at_and_no_file_foreign_key(pg_url: str) -> None:
    run(_open_close(TwinConfig(database_url=pg_url)))
    with psycopg.connect(pg_url) as conn:
        columns = {
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'session_participants'"
            )
        }
        fks = conn.execute(
            "SELECT count(*) FROM information_schema.table_constraints"
            " WHERE table_name = 'session_files' AND constraint_type = 'FOREIGN KEY'"
        ).fetchone()[0]
    assert "left_at" in columns
    assert fks == 0


async def _open_close(config: TwinConfig) -> None:
    store = await open_store(config, _metrics())
    await store.close()


@pytest.mark.parametrize(
    "url, fragment",
    [
        (
            "postgresql://postgres@127.0.0.1:1/nothing",
            "cannot connect to PostgreSQL at postgresql://postgres@127.0.0.1:1",
        ),
        ("postgresql://postgres:secret@127.0.0.1:1/db", "check DATABASE_URL"),
        ("not a url at all", "check DATABASE_URL"),
    ],
)
def test_bad_database_url_is_one_line(url: str, fragment: str) -> None:
    with pytest.raises(HarnessError) as info:
        run(_open_close(TwinConfig(database_url=url)))
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message
    assert "secret" not in message


def test_unwritable_sqlite_path_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(HarnessError) as info:
        run(_open_close(TwinConfig(sqlite_path=tmp_path / "missing-dir" / "x.sqlite3")))
    assert "--sqlite-path" in str(info.value)
