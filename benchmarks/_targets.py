"""The benchmark's targets as child processes: the upstream JS y-websocket server and the twin.

    >>> with running_targets(["upstream", "twin"], work_dir) as targets:
    ...     targets["upstream"].yjs_url, targets["twin"].api_url

The upstream server comes from codesync_load.upstream_yws (`node serve.mjs 127.0.0.1` in
tests/clients/upstream_yws, whose package-lock pins @y/websocket-server 0.1.1). The twin comes from
`start_twin` with SQLite and its in-process limiter (no shared PostgreSQL/Redis state), so the
benchmark needs nothing but node. Both are stopped by PID on exit, error or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import resource
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from codesync_load.errors import HarnessError
from codesync_load.processes import ManagedProcess
from codesync_load.twin_process import start_twin
from codesync_load.upstream_yws import start_upstream

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


@contextlib.contextmanager
def running_targets(names: list[str], work_dir: Path) -> Iterator[dict[str, Target]]:
    """Start the named targets; stop every one of them by PID however the block ends."""
    started: list[ManagedProcess] = []
    targets: dict[str, Target] = {}
    try:
        for name in names:
            if name == "upstream":
                proc, url = start_upstream(work_dir / "upstream.log", alternative="run with --targets twin")
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
