"""The twin as a process: data survives restarts (SQLite and PostgreSQL), SIGTERM is prompt
even with keep-alive connections open, and bad storage settings fail as one line.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from tests.twin._http import CookieClient, scrape, unique_email, value

STABLE_SECRETS = {"JWT_SECRET": "k" * 40, "CSRF_SECRET": "s" * 40}


def _populate(api_url: str) -> dict:
    """A user with one live and one deleted session and a saved file; what to look for later."""
    with CookieClient(api_url) as client:
        email = unique_email("persist")
        user = client.register(email)
        kept = client.create_session("Kept session")["id"]
        dropped = client.create_session("Dropped session")["id"]
        assert client.delete(f"/api/sessions/{dropped}").status_code == 200
        path = f"/api/sessions/{kept}/files/src%2Fkeep.py/content"
        assert client.put(path, {"content": "kept = True\n"}).status_code == 200
        return {"email": email, "user": user, "kept": kept, "dropped": dropped, "path": path, "cookies": client.cookies}


def _check_survived(api_url: str, saved: dict) -> None:
    with CookieClient(api_url) as client:
        client.cookies = dict(saved["cookies"])  # the old JWT is still valid (same JWT_SECRET)
        assert client.get("/api/auth/me").json()["data"]["user"]["id"] == saved["user"]["id"]
        assert client.get(saved["path"]).json()["data"]["content"] == "kept = True\n"
        assert client.get(f"/api/sessions/{saved['dropped']}").status_code == 404
    with CookieClient(api_url) as fresh:
        assert fresh.login(saved["email"])["id"] == saved["user"]["id"]


def test_data_survives_a_restart_on_the_same_sqlite_file(twin_factory, tmp_path: Path) -> None:
    first = twin_factory(name="persist", env=STABLE_SECRETS)
    saved = _populate(first.api_url)
    assert first.stop() == 0
    second = twin_factory(name="persist", env=STABLE_SECRETS)
    assert second.record["storage"] == f"sqlite:{tmp_path / 'persist.sqlite3'}"
    _check_survived(second.api_url, saved)
    # The gauge starts at what storage holds: one live session, the deleted one not counted.
    assert value(scrape(second.api_url + "/metrics"), "codesync_sessions_active") == 1


def test_postgresql_mode_and_restart(twin_factory, pg_url: str) -> None:
    env = {"DATABASE_URL": pg_url, **STABLE_SECRETS}
    first = twin_factory(name="pg1", env=env)
    assert first.record["storage"] == "postgresql"
    before = scrape(first.api_url + "/metrics")
    saved = _populate(first.api_url)
    after = scrape(first.api_url + "/metrics")
    moved = value(after, "codesync_db_queries_total", operation="create", model="User", status="success") - value(
        before, "codesync_db_queries_total", operation="create", model="User", status="success"
    )
    assert moved == 1
    assert first.stop() == 0
    with psycopg.connect(pg_url) as conn:
        stored = conn.execute("SELECT password_hash FROM users WHERE email = %s", (saved["email"],)).fetchone()[0]
        live = conn.execute("SELECT count(*) FROM sessions WHERE deleted_at IS NULL").fetchone()[0]
        files = conn.execute(
            "SELECT content FROM session_files WHERE session_id = %s AND path = 'src/keep.py'", (saved["kept"],)
        ).fetchall()
    assert stored.startswith("$2b$04$")
    assert files == [("kept = True\n",)]
    second = twin_factory(name="pg2", env=env)
    _check_survived(second.api_url, saved)
    assert value(scrape(second.api_url + "/metrics"), "codesync_sessions_active") == live


def _open_keepalive(port: int) -> socket.socket:
    """A connection that made one keep-alive request, read its answer and stays open."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
        chunk = sock.recv(65536)
        assert chunk, "connection closed early"
        data += chunk
    assert data.startswith(b"HTTP/1.1 200")
    return sock


def test_sigterm_with_open_keepalive_connections_stops_within_5s(twin_factory) -> None:
    twin = twin_factory(name="sigterm")
    sockets = [_open_keepalive(twin.api_port) for _ in range(8)]
    half_sent = socket.create_connection(("127.0.0.1", twin.api_port), timeout=5)
    half_sent.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers never finished
    sockets.append(half_sent)
    try:
        started = time.monotonic()
        os.kill(twin.pid, signal.SIGTERM)
        code = twin.process.popen.wait(timeout=10)
        elapsed = time.monotonic() - started
    finally:
        for sock in sockets:
            sock.close()
    print(f"SIGTERM to exit with 9 open connections: {elapsed:.2f} s")
    assert code == 0
    assert elapsed < 5.0, f"took {elapsed:.2f} s"


@pytest.mark.parametrize(
    "env, fragment",
    [
        ({"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none"}, "cannot connect to PostgreSQL"),
        ({"REDIS_URL": "redis://127.0.0.1:1/0"}, "cannot connect to Redis"),
    ],
)
def test_unreachable_storage_fails_as_one_line(tmp_path: Path, env: dict, fragment: str) -> None:
    child_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    argv = [sys.executable, "-m", "codesync_load.cli", "twin", "--api-port", "0", "--yjs-port", "0"]
    argv += ["--sqlite-path", str(tmp_path / "x.sqlite3")]
    result = subprocess.run(argv, env={**child_env, **env}, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
