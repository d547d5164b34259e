"""LeanYjsConnection against the twin, in a gevent-patched subprocess (as under Locust).

Three editors converge with exact counts (every update sent is echoed once to its sender and
applied once by each other editor), a late joiner syncs the whole text, the twin's per-IP
limit closes the 101st connection with 1008 as YjsRateLimited, and a refused port is a
YjsConnectError naming the URL.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_probe


def test_lean_connection_syncs_edits_and_reports_limits(twin) -> None:
    out = run_probe(Path(__file__).with_name("lean_probe.py"), twin.yjs_url)
    assert out["converged_before_head"] is True
    assert out["converged"] is True
    assert out["text_length"] == 34  # 30 keystrokes + "HEAD"
    assert out["starts_with_head"] is True
    sent = [counts[0] for counts in out["counts"]]
    assert sent == [11, 10, 10]  # editor 0 typed 10 keystrokes and inserted HEAD
    for index, (updates_sent, applied, echoes) in enumerate(out["counts"]):
        assert echoes == updates_sent
        assert applied == sum(sent) - sent[index]
    assert out["late_text_matches"] is True
    code, message = out["limited"]
    assert code == 1008 and "per-IP connection limit" in message
    assert out["held_open"] == 100
    assert "cannot connect to ws://127.0.0.1:1/" in out["refused"]
