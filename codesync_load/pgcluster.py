"""A throwaway PostgreSQL cluster of our own, to stop and start without touching anyone else's.

    >>> with ThrowawayCluster(tmp_path) as pg:       # initdb, then postgres on a free loopback port
    ...     pg.url                                   # 'postgresql://postgres@127.0.0.1:41234/postgres'
    ...     pg.stop(); pg.start()                    # the database outage, and the recovery
    # leaving the block stops the server by PID (also on failure) and removes its directory

Why: the database-outage scenario stops PostgreSQL mid-run. The machine's shared PostgreSQL
(127.0.0.1:5432) serves other people's work, so against the twin the scenario runs a cluster
of its own: Debian's `initdb` and `postgres` (/usr/lib/postgresql/*/bin), trust auth on
loopback only, its own port and directory, no Unix socket outside that directory. The server
is a ManagedProcess: started and stopped by PID, never by `pg_ctl` looking up a pid file.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from codesync_load.errors import HarnessError
from codesync_load.processes import ManagedProcess
from codesync_load.stack.ports import HOST, accepts_connections, free_port

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"


def postgres_bin() -> Path:
    """The newest Debian PostgreSQL bin directory holding initdb and postgres."""
    candidates = [Path(p) for p in glob.glob(PG_BIN_GLOB) if (Path(p) / "initdb").exists()]
    if not candidates:
        raise HarnessError(
            f"no PostgreSQL server binaries in {PG_BIN_GLOB}; install them with `apt-get install postgresql`"
        )
    return max(candidates, key=lambda p: [int(x) for x in p.parent.name.split(".") if x.isdigit()] or [0])


class ThrowawayCluster:
    """One `initdb` cluster under a fresh directory, served by `postgres` on a free loopback port."""

    def __init__(self, parent: Path | str | None = None, port: int = 0) -> None:
        self.bin = postgres_bin()
        # As root the server runs as `postgres`, which must reach the directory: the system temp
        # folder then, whatever `parent` says (pytest's tmp_path is private to root).
        self.root = Path(tempfile.mkdtemp(prefix="codesync-pg-", dir=None if os.geteuid() == 0 else parent))
        self.data = self.root / "data"
        self.port = port or free_port()
        self.proc: ManagedProcess | None = None
        self._initialised = False

    @property
    def url(self) -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/postgres"

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def _as_postgres_user(self) -> dict:
        """initdb and postgres refuse to run as root: as root, run them as the `postgres` user."""
        import pwd

        if os.geteuid() != 0:
            return {}
        try:
            entry = pwd.getpwnam("postgres")
        except KeyError:
            raise HarnessError("running as root and no `postgres` user to run initdb as; run as another user") from None
        shutil.chown(self.root, entry.pw_uid, entry.pw_gid)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def init(self) -> ThrowawayCluster:
        user = self._as_postgres_user()
        result = subprocess.run(
            [str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
            capture_output=True,
            text=True,
            timeout=120,
            **user,
        )
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["initdb failed"])[-1]
            raise HarnessError(f"initdb of a throwaway cluster in {self.data} failed: {last}")
        self._initialised = True
        return self

    def start(self, timeout: float = 30.0) -> None:
        """Serve the cluster on its port (loopback only, its socket inside its own directory)."""
        if self.proc is not None and self.proc.alive():
            return
        if not self._initialised:
            self.init()
        argv = [
            str(self.bin / "postgres"),
            "-D",
            str(self.data),
            "-p",
            str(self.port),
            "-c",
            f"listen_addresses={HOST}",
            "-c",
            f"unix_socket_directories={self.root}",
            "-c",
            "fsync=off",
        ]
        user = self._as_postgres_user()
        if user:  # run as the postgres user, still our own child (stopped by its PID)
            argv = ["setpriv", f"--reuid={user['user']}", f"--regid={user['group']}", "--clear-groups", *argv]
        self.proc = ManagedProcess.start(argv, name="postgres", log_path=self.root / "postgres.log")
        self.proc.wait_until(
            lambda: accepts_connections(self.port), timeout=timeout, what=f"accepting on {self.address}"
        )

    def stop(self) -> None:
        """Stop the server by its PID: SIGINT, PostgreSQL's fast shutdown (clients are disconnected
        at once; SIGTERM's smart shutdown would wait for them), then the process group's
        SIGTERM/SIGKILL if it has not exited within 10 s."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.popen.wait(timeout=10.0)
            self.proc.stop(grace=5.0)
            self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> ThrowawayCluster:
        try:
            self.start()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()
