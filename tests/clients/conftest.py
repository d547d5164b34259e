"""Fixtures of the client tests: the upstream y-websocket server, users and sessions on a twin.

    def test_sync(upstream_yws: str) -> None:        # "ws://127.0.0.1:PORT"
        with YjsClient(upstream_yws, "doc") as editor: ...

The upstream server (`@y/websocket-server` 0.1.1, pinned by package-lock.json) runs from
tests/clients/upstream_yws as a child process on an OS-chosen port and is stopped by PID.
Its node_modules are installed with `npm ci` on first use; the tests skip only when node
itself is missing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from codesync_load.processes import ManagedProcess

UPSTREAM_DIR = Path(__file__).parent / "upstream_yws"


def _ensure_node_modules() -> None:
    if (UPSTREAM_DIR / "node_modules" / "@y" / "websocket-server").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is missing but node is installed; install npm to run the upstream y-websocket tests")
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
        cwd=UPSTREAM_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        pytest.fail(f"npm ci in {UPSTREAM_DIR} failed: {done.stderr.strip().splitlines()[-1:]}")


@pytest.fixture(scope="session")
def upstream_yws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of the upstream JavaScript y-websocket server, started for this test session."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the upstream y-websocket interop tests need it")
    _ensure_node_modules()
    log = tmp_path_factory.mktemp("upstream_yws") / "server.log"
    proc = ManagedProcess.start([node, "serve.mjs", "127.0.0.1"], name="upstream-yws", log_path=log, cwd=UPSTREAM_DIR)
    try:
        port: list[int] = []

        def listening() -> bool:
            for line in log.read_text().splitlines():
                if line.startswith("{"):
                    port.append(json.loads(line)["port"])
                    return True
            return False

        proc.wait_until(listening, timeout=30, what="listening")
        yield f"ws://127.0.0.1:{port[0]}"
    finally:
        proc.stop()


@pytest.fixture
def doc_name() -> str:
    """A document name nobody used before (upstream never frees documents)."""
    return f"sess{uuid.uuid4().hex[:12]}:src/main.py"


def wait_until(condition, timeout: float = 10.0, what: str = "condition", interval: float = 0.02) -> None:
    """Poll `condition()` until true; fail the test naming `what` when the deadline passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not reached within {timeout:g} s")
        time.sleep(interval)
