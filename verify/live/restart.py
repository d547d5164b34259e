"""Restarting a target for the checks that judge what survives a restart.

    >>> restart = shell_restart("systemctl restart codesync-backend codesync-yjs")
    >>> target = LiveTarget(api_url, yjs_url, token, restart=restart)
    >>> restart_and_wait(target)        # runs it, then waits until /health and the Yjs port answer

The check never knows what the target is: an external deployment is restarted by the operator's
command (`codesync-load verify RUN --live --restart-cmd CMD`), a twin in the tests by a function
that stops its process and starts it again on the same ports.
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from urllib.parse import urlsplit

from codesync_load.errors import HarnessError

READY_TIMEOUT_S = 60.0


def shell_restart(command: str, timeout: float = 300.0) -> Callable[[], None]:
    """A restart that runs `command` in a shell; a non-zero exit is one HarnessError line."""

    def restart() -> None:
        try:
            done = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise HarnessError(f"--restart-cmd {command!r} did not finish within {timeout:g} s") from None
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise HarnessError(f"--restart-cmd {command!r} exited {done.returncode}: {last[0]}; fix the command")

    return restart


def _answers(api_url: str, yjs_url: str) -> bool:
    try:
        with urllib.request.urlopen(api_url.rstrip("/") + "/health", timeout=2) as response:
            if response.status != 200:
                return False
    except (urllib.error.URLError, OSError):
        return False
    parts = urlsplit(yjs_url)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=2).close()
    except OSError:
        return False
    return True


def restart_and_wait(target: object) -> float:
    """Restart the target (its `restart`), wait until it answers again; seconds it took."""
    restart = getattr(target, "restart", None)
    if restart is None:
        raise HarnessError("the target has no restart command")
    started = time.monotonic()
    restart()
    deadline = started + READY_TIMEOUT_S
    while not _answers(target.api_url, target.yjs_url):  # type: ignore[attr-defined]
        if time.monotonic() > deadline:
            raise HarnessError(
                f"the target did not answer /health and its Yjs port within {READY_TIMEOUT_S:g} s of the restart"
            )
        time.sleep(0.2)
    return time.monotonic() - started
