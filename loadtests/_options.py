"""The harness's Locust command-line options, with defaults that point at the local stack.

    $ locust -f loadtests --headless --profile smoke --yjs-url ws://127.0.0.1:4001 \
          --metrics-token "$METRICS_TOKEN" --run-dir reports/runs/mine --duration-scale 0.1

`--profile` is Locust's own option, read here as the load profile (default smoke). The rest are
registered on Locust's `init_command_line_parser` event, so `locust --help` lists them and
Locust forwards them from the master to its workers. Defaults: --host, --yjs-url and
--metrics-token come from the stack that `codesync-load stack up` left running when there is
one, else the contract's ports on 127.0.0.1; the run directory is a new folder under
reports/runs/ (ignored by git).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

DEFAULT_API_URL = "http://127.0.0.1:4000"
DEFAULT_YJS_URL = "ws://127.0.0.1:4001"
DEFAULT_PROFILE = "smoke"
RUNS_DIR = Path("reports") / "runs"


def recorded_stack_defaults() -> dict[str, str]:
    """api_url / yjs_url / metrics_token of a stack left running by `stack up`, if any."""
    try:
        from codesync_load.stack.state import read_state, resolve_state_dir

        record = read_state(resolve_state_dir(None)) or {}
    except Exception:  # a broken state file must not break `locust --help`
        return {}
    found = {}
    for key in ("api_url", "yjs_url", "metrics_token"):
        value = record.get(key)
        if isinstance(value, str) and value:
            found[key] = value
    return found


def default_run_dir(profile: str) -> Path:
    """reports/runs/<UTC time>-<profile>-<pid>: unique per run, sortable by time."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return RUNS_DIR / f"{stamp}-{Path(profile).stem}-{os.getpid()}"


def add_options(parser: Any) -> None:
    """Add the options to Locust's parser (a configargparse parser)."""
    stack = recorded_stack_defaults()
    group = parser.add_argument_group("codesync-load", "CodeSync load profiles and the ground-truth ledger")
    # --profile is Locust's own option (it groups runs); we give it the meaning "load profile"
    # (default smoke). The master resolves it and forwards the file's path to its workers in
    # this hidden option, because Locust forwards only options it does not define itself.
    group.add_argument("--resolved-profile", default="", help=argparse.SUPPRESS)
    group.add_argument(
        "--yjs-url",
        default=stack.get("yjs_url", DEFAULT_YJS_URL),
        help=f"Yjs WebSocket server (default: the running stack's, else {DEFAULT_YJS_URL})",
    )
    group.add_argument(
        "--metrics-token",
        default=stack.get("metrics_token", os.environ.get("METRICS_TOKEN", "")),
        help="bearer token for /metrics, recorded for the verifier (default: the stack's or $METRICS_TOKEN)",
    )
    group.add_argument(
        "--run-dir",
        default="",
        help="run directory for the ledger and Locust's reports (default reports/runs/<time>-<profile>-<pid>)",
    )
    group.add_argument(
        "--duration-scale",
        type=float,
        default=None,
        help="multiply every stage duration (default $CODESYNC_DURATION_SCALE or 1); CI uses e.g. 0.05",
    )
    group.add_argument(
        "--max-users",
        type=int,
        default=0,
        help="cap every stage's user count (0 = no cap), to run big profiles on a small machine",
    )
    group.add_argument(
        "--ledger-flush",
        type=float,
        default=1.0,
        help="seconds between ledger flushes to disk (default 1)",
    )
    group.add_argument(
        "--drain-timeout",
        type=float,
        default=30.0,
        help="seconds to wait at the end for users to stop and workers to report (default 30)",
    )


def default_host() -> str:
    """The API URL users talk to when Locust's --host is not given."""
    return recorded_stack_defaults().get("api_url", DEFAULT_API_URL)
