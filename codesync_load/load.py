"""Starting load: Locust as a child process against a target, and the target's reachability.

    >>> check_target("http://127.0.0.1:4000", "ws://127.0.0.1:4001", health=False)
    >>> child = start_load(profile, stack_target(stack), run_dir)     # a ManagedProcess

Why in the core: the `run` and `gate` commands, the Locust side (loadtests/_runtime.py) and the
healthy-baseline alert check (verify/live/driver.py) all start load or check a target the same
way; the core is the layer each of them may import (a command module is not: commands/ only
composes).
"""

from __future__ import annotations

import json
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from codesync_load.errors import HarnessError
from codesync_load.urls import port_of, require_http_url

REPO_ROOT = Path(__file__).resolve().parents[1]
LOADTESTS_DIR = REPO_ROOT / "loadtests"


def check_target(api_url: str, yjs_url: str, timeout: float = 3.0, health: bool = True) -> None:
    """The API answers GET /health and the Yjs port accepts TCP, else one HarnessError line.

    With `health=False` the API port is only connected to (no HTTP request), which moves no
    counter on the target: this command checks that way, and the Locust side (loadtests/
    _runtime.py) sends the one real GET /health and records it in the ledger, so the ledger
    still holds every request the run sent.
    """
    hint = "start one with `codesync-load stack up`, or pass the right --host/--api-url and --yjs-url"
    require_http_url(api_url, "API URL", "http://127.0.0.1:4000")
    require_http_url(yjs_url, "Yjs URL", "ws://127.0.0.1:4001", schemes=("ws", "wss"))
    parts, yparts = urlsplit(api_url), urlsplit(yjs_url)
    if health:
        url = api_url.rstrip("/") + "/health"
        try:
            with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=timeout) as reply:
                body = reply.read(4096)
            status = json.loads(body or b"{}").get("status")
        except urllib.error.HTTPError as err:
            raise HarnessError(
                f"target API {url} answered HTTP {err.code}, not CodeSync's health; check the URL"
            ) from None
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            raise HarnessError(f"target API {url} is unreachable ({reason}); {hint}") from None
        if status != "ok":
            raise HarnessError(f"{url} answered but not as CodeSync (status {status!r}); check the API URL")
    else:
        _tcp_check("target API", api_url, parts, timeout, hint)
    _tcp_check("target Yjs server", yjs_url, yparts, timeout, hint)


def _tcp_check(what: str, url: str, parts: Any, timeout: float, hint: str) -> None:
    port = port_of(parts)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except OSError as err:
        raise HarnessError(f"{what} {url} is unreachable ({err.strerror or err}); {hint}") from None


def stack_target(stack: Any) -> dict[str, Any]:
    """What a load run needs of a stack that is up: its URLs and /metrics token."""
    return {
        "api_url": stack.api_url,
        "yjs_url": stack.yjs_url,
        "metrics_token": stack.metrics_token,
        "prometheus_url": stack.prometheus_url,
        "alertmanager_url": stack.alertmanager_url,
        "backend": stack.backend,
    }


def locust_argv(
    profile: Any,
    target: dict[str, Any],
    run_dir: Path,
    locustfile: Path = LOADTESTS_DIR,
    max_users: int = 0,
    processes: int = 0,
) -> list[str]:
    """The `locust` command line for this run (absolute paths; the child's cwd is the repo)."""
    argv = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(Path(locustfile).resolve()),
        "--headless",
        "--host",
        target["api_url"],
        "--yjs-url",
        target["yjs_url"],
        # one argument: a generated token may start with "-", which argparse would take for an option
        f"--metrics-token={target.get('metrics_token') or ''}",
        "--profile",
        str(profile.source),
        "--duration-scale",
        repr(profile.duration_scale),
        "--run-dir",
        str(run_dir),
        "--html",
        str(run_dir / "locust.html"),
        "--json-file",
        str(run_dir / "locust"),
        "--csv",
        str(run_dir / "locust"),
        "--csv-full-history",
        "--only-summary",
        "--logfile",
        str(run_dir / "locust.log"),
    ]
    if max_users:
        argv += ["--max-users", str(max_users)]
    if processes:
        argv += ["--processes", str(processes)]
    return argv


def start_load(profile: Any, target: dict[str, Any], run_dir: Path, **options: Any) -> Any:
    """Locust as a child process (a ManagedProcess) writing its reports, the phase windows and
    the ledger into `run_dir`, its output into run_dir/locust.out.

    The one way the harness starts load: this command, and the healthy-baseline alert check
    (verify/live/driver.py), which runs a profile against a live stack while it watches the
    rules. A child, never an import: Locust monkey-patches the process that imports it.
    `options`: locust_argv's locustfile, max_users and processes.
    """
    from codesync_load.processes import ManagedProcess

    argv = locust_argv(profile, target, run_dir, **options)
    return ManagedProcess.start(argv, name="locust", log_path=run_dir / "locust.out", cwd=REPO_ROOT)


def child_error(output: Path) -> str | None:
    """The one-line error the Locust side printed before it refused to start, if any."""
    try:
        lines = output.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return None
    for line in reversed(lines):
        if line.startswith("codesync-load: error: "):
            return line.removeprefix("codesync-load: error: ")
    return None
