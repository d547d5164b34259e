"""The upstream JavaScript y-websocket server as a child process on an OS-chosen loopback port.

    >>> from codesync_load.upstream_yws import start_upstream
    >>> proc, url = start_upstream(work_dir / "upstream.log")    # url = "ws://127.0.0.1:PORT"
    >>> proc.stop()

The reference server is `node serve.mjs 127.0.0.1` in tests/clients/upstream_yws, whose
package-lock pins @y/websocket-server 0.1.1; it prints its port as one JSON line. The client
tests and the benchmark both run it, so both get it from here: one way to install it (`npm ci`
on first use), start it and know when it listens. Problems are HarnessErrors naming the fix;
`alternative` appends what the caller can do instead (the benchmark: "run with --targets twin").
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from codesync_load.errors import HarnessError
from codesync_load.processes import ManagedProcess

UPSTREAM_DIR = Path(__file__).resolve().parents[1] / "tests" / "clients" / "upstream_yws"
_INSTALLED_MARKER = UPSTREAM_DIR / "node_modules" / "@y" / "websocket-server"


def _or(alternative: str | None) -> str:
    return f", or {alternative}" if alternative else ""


def ensure_node_modules(alternative: str | None = None) -> None:
    """Run `npm ci` in UPSTREAM_DIR unless @y/websocket-server is already installed there."""
    if _INSTALLED_MARKER.is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise HarnessError(f"npm is missing: install it and run `npm ci` in {UPSTREAM_DIR}{_or(alternative)}")
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
        cwd=UPSTREAM_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise HarnessError(f"`npm ci` in {UPSTREAM_DIR} failed ({last}); fix npm access{_or(alternative)}")


def start_upstream(log_path: Path, alternative: str | None = None) -> tuple[ManagedProcess, str]:
    """Start the server (installing it first if needed); returns the process and its ws:// URL.

    The process is stopped again if it does not come up, so a failure leaves nothing running.
    """
    node = shutil.which("node")
    if node is None:
        raise HarnessError(f"node is not installed: the upstream y-websocket server needs Node 18+{_or(alternative)}")
    ensure_node_modules(alternative)
    proc = ManagedProcess.start(
        [node, "serve.mjs", "127.0.0.1"], name="upstream-yws", log_path=log_path, cwd=UPSTREAM_DIR
    )
    port: list[int] = []

    def listening() -> bool:
        for line in log_path.read_text().splitlines():
            if line.startswith("{"):
                port.append(json.loads(line)["port"])
                return True
        return False

    try:
        proc.wait_until(listening, timeout=30, what="listening")
    except BaseException:
        proc.stop()
        raise
    return proc, f"ws://127.0.0.1:{port[0]}"
