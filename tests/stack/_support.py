"""Helpers for the stack tests: run the CLI, poll with a deadline, count our children.

>>> result = run_cli("stack", "status", "--json", "--state-dir", str(tmp))
>>> wait_for(lambda: alerts_delivered(log, "ServiceDown"), 60, "ServiceDown delivered")
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import psutil
import requests

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")

# What a local stack around the twin starts, in start order: the tests' own list, written out
# rather than read from the stack's code, so a component lost or added there shows up here.
LOCAL_COMPONENTS = [
    "webhook",
    "tracker",
    "twin",
    "node-exporter",
    "postgres-exporter",
    "redis-exporter",
    "blackbox",
    "alertmanager",
    "prometheus",
]


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m codesync_load.cli ARGS` from the repo root, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "codesync_load.cli", *args],
        cwd=REPO,
        # A DATABASE_URL/REDIS_URL of the caller's shell must not leak into the stack's twin.
        env={**os.environ, "DATABASE_URL": "", "REDIS_URL": "", **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# What a probe may raise while the thing it waits for is still coming up: a server not yet
# listening or answering 5xx (OSError: refused, reset, promapi's "answered HTTP 503") and a file
# still being written (ValueError: partial JSON). Anything else is a bug in the probe or the
# code under test and propagates at once, instead of being retried into a timeout.
NOT_YET = (OSError, ValueError)


def wait_for(
    probe: Callable[[], T],
    timeout: float,
    what: str,
    interval: float = 0.25,
    not_yet: tuple[type[BaseException], ...] = NOT_YET,
) -> T:
    """The first truthy result of `probe` within `timeout` s, else AssertionError naming `what`;
    `not_yet` are the exceptions that mean "not ready", retried like a falsy result."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            result = probe()
        except not_yet as err:
            last = err
        else:
            if result:
                return result
            last = result
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout:g} s (last: {last!r})")


def child_pids() -> set[int]:
    """PIDs of every live (non-zombie) descendant of this test process."""
    out = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                out.add(child.pid)
        except psutil.NoSuchProcess:
            continue
    return out


class Traffic:
    """GET `url` every `interval` s in a thread until the block ends, counting status codes.

    Prometheus' rate() cannot see the first increment of a new series, so traffic that
    should show up in a window must be spread over several scrapes, not sent in one burst.
    """

    def __init__(self, url: str, interval: float = 0.1) -> None:
        self.url = url
        self.interval = interval
        self.codes: Counter[int] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                try:
                    self.codes[session.get(self.url, timeout=5).status_code] += 1
                except requests.RequestException:
                    self.codes[0] += 1
                self._stop.wait(self.interval)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


PROBE_TEST = """
import json
import os


def test_probe(codesync_stack):
    stack = codesync_stack
    record = {
        "backend": stack.backend,
        "api_url": stack.api_url,
        "yjs_url": stack.yjs_url,
        "prometheus_url": stack.prometheus_url,
        "alertmanager_url": stack.alertmanager_url,
        "metrics_token": stack.metrics_token,
        "components": stack.components,
        "ready": stack.ready(),
        "run_dir": str(getattr(stack, "run_dir", "")),
    }
    with open(os.environ["PROBE_OUT"], "w") as handle:
        json.dump(record, handle)
"""


def run_fixture_probe(tmp_path: Path, *options: str) -> tuple[subprocess.CompletedProcess, dict | None]:
    """Run a one-test pytest session that uses the root conftest's `codesync_stack` fixture.

    Returns the session's result and what the fixture's stack looked like inside it.
    """
    test_file = tmp_path / "test_probe.py"
    test_file.write_text(PROBE_TEST)
    out = tmp_path / "probe.json"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-q", str(test_file), *options],
        cwd=REPO,
        env={**os.environ, "PROBE_OUT": str(out)},
        capture_output=True,
        text=True,
        timeout=180,
    )
    return result, (json.loads(out.read_text()) if out.exists() else None)
