"""The benchmark's targets as child processes: the upstream JS y-websocket server and the twin.

    >>> with running_targets(["upstream", "twin"], work_dir) as targets:
    ...     targets["upstream"].yjs_url, targets["twin"].api_url

The upstream server is started exactly as the client tests start it (tests/clients/conftest.py):
`node serve.mjs 127.0.0.1` in tests/clients/upstream_yws, whose package-lock pins
@y/websocket-server 0.1.1, reading the port from its one JSON line. The twin comes from
`start_twin` with SQLite and its in-process limiter (no shared PostgreSQL/Redis state), so the
benchmark needs nothing but node. Both are stopped by PID on exit, error or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import resource
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from codesync_load.errors import HarnessError
from codesync_load.processes import ManagedProcess
from codesync_load.twin_process import start_twin

ROOT = Path(__file__).resolve().parents[1]
UPSTREAM_DIR = ROOT / "tests" / "clients" / "upstream_yws"
KNOWN = ("upstream", "twin")


@dataclass
class Target:
    name: str
    yjs_url: str
    api_url: str | None  # None: no REST (upstream)
    pid: int


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE (children inherit it); returns the new soft limit.

    One process holding N WebSockets needs N descriptors, and so does the server.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard == resource.RLIM_INFINITY else min(hard, max(soft, wanted))
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _start_upstream(work_dir: Path) -> tuple[ManagedProcess, str]:
    node = shutil.which("node")
    if node is None:
        raise HarnessError("node is not installed: the upstream target needs Node 18+; or run with --targets twin")
    if not (UPSTREAM_DIR / "node_modules" / "@y" / "websocket-server").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            raise HarnessError(f"npm is missing: run `npm ci` in {UPSTREAM_DIR}, or use --targets twin")
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=UPSTREAM_DIR,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise HarnessError(f"`npm ci` in {UPSTREAM_DIR} failed ({last}); fix npm access or use --targets twin")
    log = work_dir / "upstream.log"
    proc = ManagedProcess.start([node, "serve.mjs", "127.0.0.1"], name="upstream-yws", log_path=log, cwd=UPSTREAM_DIR)
    port: list[int] = []

    def listening() -> bool:
        for line in log.read_text().splitlines():
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


@contextlib.contextmanager
def running_targets(names: list[str], work_dir: Path) -> Iterator[dict[str, Target]]:
    """Start the named targets; stop every one of them by PID however the block ends."""
    started: list[ManagedProcess] = []
    targets: dict[str, Target] = {}
    try:
        for name in names:
            if name == "upstream":
                proc, url = _start_upstream(work_dir)
                started.append(proc)
                targets[name] = Target(name, url, None, proc.pid)
            elif name == "twin":
                # SQLite + in-process state: nothing shared with other users of PostgreSQL/Redis.
                twin = start_twin(
                    work_dir, env={"DATABASE_URL": "", "REDIS_URL": ""}, extra_args=["--bcrypt-rounds", "4"]
                )
                started.append(twin.process)
                targets[name] = Target(name, twin.yjs_url, twin.api_url, twin.pid)
            else:
                raise HarnessError(f"unknown target {name!r}; choose from {', '.join(KNOWN)}")
        yield targets
    finally:
        for proc in reversed(started):
            proc.stop()
