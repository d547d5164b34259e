"""SIGTERM with Socket.IO clients still connected stops the twin within 5 s, and tells them.

Open websocket connections and a long-poll held by the polling transport are the two ways
a Socket.IO client can keep an HTTP handler busy; the twin must close both itself instead
of waiting for the clients to leave.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from pathlib import Path

import socketio

from tests.twin._http import scrape, value
from tests.twin.test_socketio_support import Peer, close_all, register_user

SHUTDOWN_BOUND_S = 5.0


def test_sigterm_with_open_socketio_clients_stops_within_bound(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory(name="sioterm")
    alice, bob = register_user(twin.api_url, "Alice"), register_user(twin.api_url, "Bob")
    session_id = alice.api.create_session()["id"]
    # Bob is a participant the way the product makes one (a Socket.IO join alone makes no row).
    made = alice.api.post("/api/invitations", {"sessionId": session_id, "email": bob.email, "role": "EDITOR"})
    accepted = bob.api.post(f"/api/invitations/accept/{made.json()['data']['invitation']['token']}", {})
    assert accepted.status_code == 200, accepted.text

    async def scenario() -> float:
        peers = [Peer(twin.api_url) for _ in range(4)]
        polling = socketio.AsyncClient(reconnection=False, logger=False, engineio_logger=False)
        try:
            for index, peer in enumerate(peers):
                await peer.connect(token=(alice if index % 2 == 0 else bob).token)
            await polling.connect(twin.api_url, auth={"token": bob.token}, transports=["polling"], wait_timeout=10)
            await peers[0].join(session_id)
            await peers[1].join(session_id)
            active = value(scrape(twin.api_url + "/metrics"), "codesync_websocket_connections_active", type="socketio")
            assert active == 5

            started = time.monotonic()
            os.kill(twin.pid, signal.SIGTERM)
            code = await asyncio.to_thread(twin.process.popen.wait, SHUTDOWN_BOUND_S + 5)
            elapsed = time.monotonic() - started
            assert code == 0, twin.process.log_tail()

            deadline = time.monotonic() + 5
            while any(p.sio.connected for p in peers) or polling.connected:
                assert time.monotonic() < deadline, "clients were not told that the server went away"
                await asyncio.sleep(0.02)
            # An orderly Socket.IO disconnect, not a dropped transport.
            assert [p.disconnect_reason for p in peers] == ["server disconnect"] * len(peers)
            return elapsed
        finally:
            await close_all(*peers)
            await polling.shutdown()

    elapsed = asyncio.run(scenario())
    assert elapsed < SHUTDOWN_BOUND_S, f"twin took {elapsed:.2f} s to stop with open Socket.IO clients"
    assert "Traceback" not in (twin.process.log_path.read_text() if twin.process.log_path else "")
    # The disconnect handlers ran during shutdown: both joined users are marked left.
    with sqlite3.connect(f"file:{tmp_path / 'sioterm.sqlite3'}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT user_id, left_at IS NOT NULL FROM session_participants WHERE session_id = ? ORDER BY user_id",
            (session_id,),
        ).fetchall()
    assert sorted(rows) == sorted([(alice.id, 1), (bob.id, 1)])
