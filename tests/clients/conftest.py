"""Fixtures of the client tests: the upstream y-websocket server, users and sessions on a twin.

    def test_sync(upstream_yws: str) -> None:        # "ws://127.0.0.1:PORT"
        with YjsClient(upstream_yws, "doc") as editor: ...

The upstream server (`@y/websocket-server` 0.1.1, pinned by package-lock.json) runs from
tests/clients/upstream_yws as a child process on an OS-chosen port and is stopped by PID.
Its node_modules are installed with `npm ci` on first use; the tests skip only when node
itself is missing.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator

import pytest

from codesync_load.errors import HarnessError
from codesync_load.upstream_yws import start_upstream


@pytest.fixture(scope="session")
def upstream_yws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of the upstream JavaScript y-websocket server, started for this test session.

    codesync_load.upstream_yws installs, starts and waits for it (the benchmark uses the same
    code); here a missing node skips and any other HarnessError fails the test.
    """
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the upstream y-websocket interop tests need it")
    log = tmp_path_factory.mktemp("upstream_yws") / "server.log"
    try:
        proc, url = start_upstream(log)
    except HarnessError as err:
        pytest.fail(str(err))
    try:
        yield url
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
