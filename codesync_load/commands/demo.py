"""`codesync-load demo`: the main job on the embedded default target, what `./run` does.

    $ codesync-load demo                 # start the twin, smoke-check it, stop it

Starts the twin in its embedded default mode (SQLite, in-process state) on free loopback
ports, checks it over REST, Socket.IO and Yjs through the shared clients, prints what it
saw and stops everything it started, also on failure and Ctrl-C.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from codesync_load.errors import HarnessError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="the main job on the embedded twin (what ./run does)")
    parser.add_argument("--work-dir", type=Path, default=None, help="where logs go (default: a temporary folder)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from codesync_load.smoke import smoke_check
    from codesync_load.twin_process import start_twin

    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="codesync-demo-"))
    print(f"starting the CodeSync twin (logs in {work_dir})", flush=True)
    twin = start_twin(work_dir, env={"DATABASE_URL": "", "REDIS_URL": ""})
    try:
        print(f"twin up: API {twin.api_url}  Yjs {twin.yjs_url}  pid {twin.pid}", flush=True)
        report = smoke_check(twin.api_url, twin.yjs_url)
        for step in report.steps:
            mark = "ok  " if step.ok else "FAIL"
            print(f"  {mark} {step.name:20} {step.seconds * 1000:8.1f} ms  {step.detail}", flush=True)
    finally:
        started = time.monotonic()
        code = twin.stop()
        print(f"twin stopped (exit {code}) in {time.monotonic() - started:.2f} s", flush=True)
    failed = report.failure()
    if failed is not None:
        raise HarnessError(f"smoke check failed at {failed.name}: {failed.detail}")
    print("smoke check passed: the twin speaks CodeSync over REST, Socket.IO and Yjs")
    return 0
