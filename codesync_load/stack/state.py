"""The state file of a running stack: every PID, URL, port and the token, for later commands.

    >>> state_dir = resolve_state_dir(None)     # --state-dir, else $CODESYNC_STATE_DIR, else ~/.local/state/...
    >>> record = read_state(state_dir)          # None when no stack was recorded
    >>> live_pids(record)                       # the recorded PIDs still running as what they were

`stack up` leaves processes running after it exits; `stack down` and `stack status` are other
processes that only know the PIDs from this file. A PID is "alive" only while /proc still
shows it with the command it was recorded with, so a recycled PID is never stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

STATE_FILE = "stack.json"


def resolve_state_dir(state_dir: str | Path | None) -> Path:
    """--state-dir, else $CODESYNC_STATE_DIR, else $XDG_STATE_HOME or ~/.local/state, /codesync-load."""
    if state_dir:
        return Path(state_dir).expanduser().resolve()
    if os.environ.get("CODESYNC_STATE_DIR"):
        return Path(os.environ["CODESYNC_STATE_DIR"]).expanduser().resolve()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base).expanduser().resolve() / "codesync-load"


def state_path(state_dir: Path) -> Path:
    return state_dir / STATE_FILE


def read_state(state_dir: Path) -> dict | None:
    """The recorded stack, or None; an unreadable file counts as none (and is reported by callers)."""
    path = state_path(state_dir)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"backend": "unknown", "components": {}, "corrupt": str(path)}


def write_state(state_dir: Path, record: dict) -> Path:
    """Write atomically, readable by the owner only (the record holds the metrics token)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_path(state_dir)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(record, handle, indent=2)
    tmp.replace(path)
    return path


def remove_state(state_dir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        state_path(state_dir).unlink()


def pid_alive(pid: int | None, expected: str | None = None) -> bool:
    """True while `pid` runs (not a zombie) and its command line contains `expected`."""
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    if stat.rsplit(") ", 1)[-1].startswith("Z"):
        return False
    return not expected or expected in cmdline


def live_pids(record: dict | None) -> dict[str, int]:
    """Component name -> PID for the recorded components still alive."""
    if not record:
        return {}
    out = {}
    for name, comp in (record.get("components") or {}).items():
        pid = comp.get("pid")
        if pid and pid_alive(pid, comp.get("expected")):
            out[name] = pid
    return out
