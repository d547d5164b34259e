"""Runs for server-errors-reach-tracker tests: REQUESTS sent to a target, received statuses kept
in a ledger as `codesync-load run` keeps them, and that run judged against a tracker record.
Shared by the local Bugsink tests (tests/verify_live/test_error_tracker.py) and the compose
stack's bugsink container (tests/stack/test_compose_containers.py).
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from codesync_load.ledger import Ledger
from scenarios.clients.rest import USER_AGENT
from verify.checks import REGISTRY, CheckResult
from verify.checks.errors_tracked import SLACK_S
from verify.context import VerifyContext, VerifyOptions
from verify.tracker import TrackerAccess, attach_tracker

CHECK = "server-errors-reach-tracker"
# (method, path, route template) of the requests each run sends; with a bogus token the API
# answers 4xx to both, the error-burst fault 500 before any handler runs.
REQUESTS = [("POST", "/api/sessions", "/api/sessions"), ("GET", "/api/auth/me", "/api/auth/me")]
ROUNDS = 5
# A browser of someone else using the same CodeSync while the run goes on.
OTHER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) another CodeSync user"


def drive(target: Any, run_dir: Path, rounds: int = ROUNDS, parallel: int = 1, others: int = 0) -> Ledger:
    """`rounds` of REQUESTS to `target.api_url` (a twin process or a stack), `parallel` at a
    time, with credentials and a cookie (which no event may carry) and the harness's
    User-Agent, as the load's REST client sends them; the ledger of what came back, written
    to run_dir as a finished run's. `others` more rounds come, in the same window, from
    another client (User-Agent OTHER_AGENT), which the ledger does not count."""
    time.sleep(SLACK_S + 0.2)  # apart from the previous test's window
    ledger = Ledger(meta={"profile": "tracker-test"})
    ledger.phase_start("steady")

    def send(request: tuple[str, str, str], agent: str = USER_AGENT) -> int:
        method, path, route = request
        headers = {"Authorization": "Bearer not-a-token", "Cookie": "sessionId=abc; token=secret"}
        headers["User-Agent"] = agent
        req = urllib.request.Request(target.api_url + path, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                status = resp.status
        except urllib.error.HTTPError as err:
            status = err.code
        if agent == USER_AGENT:
            ledger.count("http", method, route, status)
        return status

    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(send, REQUESTS * rounds))
        list(pool.map(lambda request: send(request, OTHER_AGENT), REQUESTS * others))
    ledger.phase_end()
    run_dir.mkdir(parents=True, exist_ok=True)
    ledger.write(run_dir / "ledger.json", complete=True)
    return ledger


def judge_run(run_dir: Path, record: dict[str, Any] | None) -> CheckResult:
    """The check's verdict on the run in run_dir, reading the tracker `record` names (None: none)."""
    ctx = VerifyContext(VerifyOptions(run_dir=run_dir))
    attach_tracker(ctx, TrackerAccess.from_record(record))
    result = REGISTRY[CHECK].run(ctx)
    assert result.verdict != "error", result.render()
    return result
