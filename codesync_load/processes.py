"""Child processes that are always stopped: by PID, on failure, on Ctrl-C, at exit.

    >>> proc = ManagedProcess.start(["prometheus", "--config.file=p.yml"], name="prometheus",
    ...                             log_path=run_dir / "prometheus.log")
    >>> proc.stop()              # SIGTERM, then SIGKILL after the grace period

Every child runs in its own process group so that stopping it also stops what it spawned,
and every live child is registered for an atexit sweep, so a harness that dies of an
exception leaves nothing behind.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from codesync_load.errors import HarnessError

_LIVE: dict[int, ManagedProcess] = {}


@dataclass
class ManagedProcess:
    name: str
    popen: subprocess.Popen
    log_path: Path | None = None
    _log_file: object | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @classmethod
    def start(
        cls,
        argv: Sequence[str],
        *,
        name: str,
        log_path: Path | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> ManagedProcess:
        """Spawn `argv` in a new session with output to `log_path` (or discarded)."""
        log_file = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )
        except FileNotFoundError:
            if log_path:
                log_file.close()
            raise HarnessError(f"{name}: executable {argv[0]!r} not found; install it or fix PATH") from None
        proc = cls(name=name, popen=popen, log_path=log_path, _log_file=log_file if log_path else None)
        _LIVE[popen.pid] = proc
        return proc

    def alive(self) -> bool:
        return self.popen.poll() is None

    def detach(self) -> None:
        """Leave the process running after this interpreter exits (e.g. `stack up`).

        Whoever detaches must record the PID so that a later command can stop it.
        """
        _LIVE.pop(self.popen.pid, None)

    def log_tail(self, lines: int = 5) -> str:
        """The last lines of the log, for error messages about an early death."""
        if not self.log_path or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").strip().splitlines()
        return " | ".join(line.strip() for line in text[-lines:])

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
        """Poll `ready` until true; raise HarnessError when the process dies or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                tail = self.log_tail()
                raise HarnessError(
                    f"{self.name} exited with code {self.popen.returncode} before {what}"
                    + (f": {tail}" if tail else "")
                    + (f" (log: {self.log_path})" if self.log_path else "")
                )
            with contextlib.suppress(Exception):
                if ready():
                    return
            time.sleep(interval)
        raise HarnessError(
            f"{self.name} (pid {self.pid}) did not reach {what} within {timeout:g} s"
            + (f"; see {self.log_path}" if self.log_path else "")
        )

    def stop(self, grace: float = 5.0) -> int | None:
        """SIGTERM the process group, SIGKILL it after `grace` seconds; returns the exit code."""
        try:
            if self.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGTERM)
                try:
                    self.popen.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.popen.pid, signal.SIGKILL)
                    self.popen.wait(timeout=5)
            # Reap anything left in the group (children of the child).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            return self.popen.returncode
        finally:
            _LIVE.pop(self.popen.pid, None)
            if self._log_file is not None:
                with contextlib.suppress(Exception):
                    self._log_file.close()


def stop_all() -> None:
    """Stop every process this interpreter started and has not stopped yet."""
    for proc in list(_LIVE.values()):
        proc.stop(grace=2.0)


atexit.register(stop_all)


def stop_pid(pid: int, grace: float = 5.0, expected_name: str | None = None) -> bool:
    """Stop a process group started earlier (by a previous command) by its PID.

    Returns True when something was running. `expected_name` guards against a PID that
    was recycled by an unrelated process: its /proc cmdline must contain the name.
    """
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except FileNotFoundError:
        return False
    if expected_name and expected_name not in cmdline:
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
            break
        time.sleep(0.05)
    else:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    return True


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (FileNotFoundError, IndexError):
        return True
