"""Running harness commands as an operator does, and seeing whether one started a twin.

>>> done, twins = cli("gate", "--profile", "ci", state=tmp_path / "state")
>>> twins            # PIDs of twin processes the command started (descendants), set() if none
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str, state: Path, timeout: float = 600) -> tuple[subprocess.CompletedProcess, set[int]]:
    """Run one harness command as the operator does; (its result, twins it started).

    A twin the command started is a descendant of it whose command line is `... twin ...`;
    /proc is sampled every 50 ms while the command runs (a twin needs a second to be ready).
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "codesync_load.cli", *args],
        cwd=REPO,
        env={**os.environ, "CODESYNC_STATE_DIR": str(state), "DATABASE_URL": "", "REDIS_URL": ""},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    twins: set[int] = set()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            twins.update(_twin_descendants(proc.pid))
            stop.wait(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        stop.set()
        watcher.join()
        if proc.poll() is None:
            proc.kill()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), twins


def _twin_descendants(root: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
    found = set()
    for pid in parents:
        ancestor, depth = parents.get(pid), 0
        while ancestor and ancestor != root and depth < 20:
            ancestor, depth = parents.get(ancestor), depth + 1
        if ancestor == root:
            with contextlib.suppress(OSError):
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                if b"twin" in argv and any(b"codesync" in part for part in argv):
                    found.add(pid)
    return found
