"""The shared launcher of the upstream y-websocket server (codesync_load.upstream_yws).

    $ .venv/bin/pytest tests/interop/test_upstream_yws.py

It must hand back a URL where the real upstream server answers the Yjs sync handshake,
stop it by PID, and turn a missing node into one line that names the caller's way out.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from websockets.sync.client import connect

from codesync_load.errors import HarnessError
from codesync_load.upstream_yws import start_upstream

SYNC_STEP1_EMPTY = bytes([0, 0, 1, 0])  # messageSync, SyncStep1, a 1-byte state vector: no clients
SYNC_STEP2_EMPTY = bytes([0, 1, 2, 0, 0])  # messageSync, SyncStep2, a 2-byte update: no structs, no deletes


def test_upstream_answers_sync_step1_and_stops_by_pid(tmp_path: Path) -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the upstream y-websocket server needs it")
    proc, url = start_upstream(tmp_path / "upstream.log")
    try:
        assert url.startswith("ws://127.0.0.1:")
        with connect(url + "/sessX:src/a.py", open_timeout=10) as ws:
            assert ws.recv(timeout=10) == SYNC_STEP1_EMPTY  # the server opens with its own state vector
            ws.send(SYNC_STEP1_EMPTY)
            assert ws.recv(timeout=10) == SYNC_STEP2_EMPTY  # and answers ours with the (empty) document
    finally:
        code = proc.stop()
    assert not proc.alive()
    assert code is not None


def test_missing_node_is_one_line_with_the_alternative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no node, no npm
    with pytest.raises(HarnessError) as caught:
        start_upstream(tmp_path / "upstream.log", alternative="run with --targets twin")
    message = str(caught.value)
    assert (
        message == "node is not installed: the upstream y-websocket server needs Node 18+, or run with --targets twin"
    )
    assert not (tmp_path / "upstream.log").exists()
