"""Start the twin as a child process and know when it is ready.

    >>> twin = start_twin(run_dir, faults=["ws-gauge-leak"], env={"METRICS_TOKEN": "t"})
    >>> twin.api_url, twin.yjs_url
    >>> twin.stop()

The one way the tests, the local stack and the CLI start a twin: free ports chosen by the
twin itself (port 0) and reported through its ready file, so parallel runs never collide.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from codesync_load.processes import ManagedProcess


@dataclass
class TwinProcess:
    process: ManagedProcess
    record: dict

    @property
    def api_url(self) -> str:
        return self.record["api_url"]

    @property
    def yjs_url(self) -> str:
        return self.record["yjs_url"]

    @property
    def api_port(self) -> int:
        return self.record["api_port"]

    @property
    def yjs_port(self) -> int:
        return self.record["yjs_port"]

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, grace: float = 8.0) -> int | None:
        return self.process.stop(grace=grace)


def start_twin(
    work_dir: Path,
    *,
    faults: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    extra_args: Sequence[str] = (),
    api_port: int = 0,
    yjs_port: int = 0,
    host: str = "127.0.0.1",
    name: str = "twin",
    timeout: float = 30.0,
) -> TwinProcess:
    """Spawn `codesync-load twin` with its log and ready file in `work_dir`.

    `env` is laid over the current environment (DATABASE_URL, REDIS_URL, METRICS_TOKEN, ...);
    pass an empty string to unset a variable for the child.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    ready = work_dir / f"{name}.ready.json"
    ready.unlink(missing_ok=True)
    argv = [
        sys.executable,
        "-m",
        "codesync_load.cli",
        "twin",
        "--host",
        host,
        "--api-port",
        str(api_port),
        "--yjs-port",
        str(yjs_port),
        "--ready-file",
        str(ready),
        "--sqlite-path",
        str(work_dir / f"{name}.sqlite3"),
    ]
    for fault in faults:
        argv += ["--fault", fault]
    argv += list(extra_args)
    child_env = dict(os.environ)
    for key, value in (env or {}).items():
        if value == "":
            child_env.pop(key, None)
        else:
            child_env[key] = value
    proc = ManagedProcess.start(argv, name=name, log_path=work_dir / f"{name}.log", env=child_env)
    try:
        proc.wait_until(ready.exists, timeout=timeout, what="listening")
        record = json.loads(ready.read_text())
    except BaseException:
        proc.stop()
        raise
    return TwinProcess(process=proc, record=record)
