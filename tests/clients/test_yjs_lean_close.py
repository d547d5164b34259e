"""LeanYjsConnection.close() completes the closing handshake, so the server gets every frame sent.

Found under the full-size stress run: a connection closed while the server's broadcasts sat
unread in its socket was reset instead of closed, and the twin lost the awareness goodbye sent
just before (the ledger said one Yjs frame more than the twin). The probe (a gevent-patched
subprocess, as under Locust) reproduces that moment on purpose: both connections close with
data unread, `a` right after 3,000 keystrokes the twin is still working through. Before the
fix the twin counted 2,747-2,928 of the 3,006 frames sent; it must count exactly all of them.
"""

from __future__ import annotations

from pathlib import Path

from codesync_load.exposition import delta
from tests.conftest import run_probe
from tests.load._loadrun import settled

ROUNDS = 3000
INBOUND = {"type": "yjs", "direction": "inbound"}


def test_close_with_unread_broadcasts_loses_no_frame_sent(twin) -> None:
    _, before = settled(twin)  # the Yjs port's metrics, once no WebSocket is open on the twin
    out = run_probe(Path(__file__).with_name("close_probe.py"), twin.yjs_url, str(ROUNDS))
    _, after = settled(twin)
    assert out["unread_at_close"] > 0  # the moment the test is about did happen
    sent_b = out["sent"]["b"]
    assert sent_b["awareness"] == 2  # the cursor and the goodbye
    total_sent = sum(sum(counts.values()) for counts in out["sent"].values())
    assert out["sent"]["a"]["update"] == ROUNDS
    assert delta(before, after, "codesync_websocket_messages_total", **INBOUND) == total_sent
