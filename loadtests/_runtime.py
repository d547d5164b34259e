"""One load-generating process's state and its wiring into Locust's events.

    >>> from _runtime import RUNTIME          # the process's ledger, recorder, profile, pool
    >>> RUNTIME.recorder.http(result)         # users record through RUNTIME.recorder

Roles follow Locust's runner: a local runner records and writes the run directory; a worker
records and sends what it recorded since its last report (`Ledger.drain`) inside Locust's
own worker report (`report_to_master`), so nothing is sent twice or lost; the master merges
those deltas (`worker_report`) and alone writes the run directory. The ledger is flushed
every --ledger-flush seconds with "complete": false, and marked complete only after the
shape's drain confirmed that every user stopped and every worker sent its last delta.

Checks that must end a run before it starts (a bad profile, an unreachable target) run on
`init` and exit with one line on stderr and status 2: never a traceback, never a run full of
failures.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import gevent
from _options import DEFAULT_PROFILE, add_options, default_host, default_run_dir
from _sessions import SessionPool
from locust import events
from locust.runners import MasterRunner, WorkerRunner

from codesync_load.errors import HarnessError
from codesync_load.ledger import Ledger, flush_pause, write_json_atomic
from codesync_load.load import check_target
from scenarios.profiles import Profile, load_profile
from scenarios.recording import Recorder

REPORT_KEY = "codesync_ledger"
GRACEFUL_STOP_S = 15.0


class Runtime:
    """The per-process singleton the users, the shape and the event hooks share."""

    def __init__(self) -> None:
        self.ledger = Ledger()
        self.recorder = Recorder(self.ledger)
        self.profile: Profile | None = None
        self.pool: SessionPool | None = None
        self.role = "local"
        self.run_id = uuid.uuid4().hex[:12]
        self.run_dir: Path | None = None
        self.environment: Any = None
        self.drain_timeout = 30.0
        self.max_users = 0
        self._flusher: Any = None
        self._finished = False
        self._complete = False
        self._reason = ""
        self._drain_at: float | None = None
        # master: worker id -> (time its last report arrived, its user count then)
        self.worker_last: dict[str, tuple[float, int]] = {}
        self.user_seq = 0

    # -- setup -----------------------------------------------------------------------------
    def attach(self, environment: Any, runner: Any) -> None:
        """Called on Locust's init event in every process."""
        self.environment = environment
        opts = environment.parsed_options
        if isinstance(runner, WorkerRunner):
            self.role = "worker"
        elif isinstance(runner, MasterRunner):
            self.role = "master"
        self.drain_timeout = float(getattr(opts, "drain_timeout", 30.0) or 30.0)
        if self.role == "worker":
            environment.events.report_to_master.add_listener(self._on_report_to_master)
            self.load_profile(opts, quiet_errors=True)
            return
        try:
            self.load_profile(opts)
            if not environment.host:
                environment.host = default_host()
            # The run starts before its first request: the target check's GET /health is in the
            # ledger, so a window opening after it would leave it to the "before" scrape.
            started_at = time.time()
            check_target(environment.host, opts.yjs_url)
            self.ledger.count("http", "GET", "/health", 200)  # the check's request, counted like any
            self.prepare_run_dir(opts, started_at)
        except HarnessError as err:
            die(str(err))
        if not environment.stop_timeout:
            # Users finish the task in hand when stopped: a request killed in flight would
            # reach the server but never the ledger. (Waiting users stop at once anyway.)
            environment.stop_timeout = GRACEFUL_STOP_S
        if self.role == "master":
            environment.events.worker_report.add_listener(self._on_worker_report)
        self.apply_weights(runner)
        gevent.signal_handler(signal.SIGTERM, self._on_sigterm)
        self._flusher = gevent.spawn(self._flush_loop, max(0.1, float(opts.ledger_flush or 1.0)))

    def load_profile(self, opts: Any, quiet_errors: bool = False) -> None:
        name = getattr(opts, "resolved_profile", "") or getattr(opts, "profile", None) or DEFAULT_PROFILE
        try:
            profile = load_profile(name, getattr(opts, "duration_scale", None))
        except HarnessError:
            if quiet_errors:
                return  # a worker gets the master's resolved profile at spawn time
            raise
        self.profile = profile
        self.max_users = int(getattr(opts, "max_users", 0) or 0)
        if self.max_users < 0:
            raise HarnessError(f"--max-users {self.max_users} is negative; pass 0 (no cap) or a positive number")
        opts.resolved_profile = str(profile.source)
        if self.pool is None or self.pool.participants != profile.participants:
            self.pool = SessionPool(profile.participants)

    def refresh_from_master(self) -> None:
        """Workers: the master's options arrive with the first spawn; reload the profile."""
        if self.environment is not None and self.role == "worker":
            self.load_profile(self.environment.parsed_options, quiet_errors=True)

    def apply_weights(self, runner: Any) -> None:
        """Give each user class its profile weight (classes name their kind in `kind`)."""
        if self.profile is None:
            return
        for user_class in runner.user_classes:
            kind = getattr(user_class, "kind", None)
            if kind in self.profile.weights and self.profile.weights[kind] > 0:
                user_class.weight = self.profile.weights[kind]

    def active_user_classes(self, runner: Any) -> list:
        """The user classes the profile gives a positive weight (the shape spawns only these)."""
        if self.profile is None:
            return list(runner.user_classes)
        active = [c for c in runner.user_classes if self.profile.weights.get(getattr(c, "kind", ""), 0) > 0]
        return active or list(runner.user_classes)

    def cap_users(self, users: int) -> int:
        return min(users, self.max_users) if self.max_users else users

    def prepare_run_dir(self, opts: Any, started_at: float) -> None:
        profile = self.profile
        assert profile is not None
        run_dir = Path(opts.run_dir) if opts.run_dir else default_run_dir(profile.name)
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            probe = run_dir / ".writable"
            probe.write_text("")
            probe.unlink()
        except OSError as err:
            reason = err.strerror or err
            raise HarnessError(f"cannot write the run directory {run_dir} ({reason}); pass another --run-dir") from None
        self.run_dir = run_dir.resolve()
        # Locust's own outputs land in the run directory unless the user chose elsewhere.
        if not opts.html_file:
            opts.html_file = str(self.run_dir / "locust.html")
        if not opts.json_file:
            opts.json_file = str(self.run_dir / "locust")
        self.ledger.meta.update(
            {
                "run_id": self.run_id,
                "profile": profile.name,
                "profile_source": str(profile.source),
                "duration_scale": profile.duration_scale,
                "crosses_rate_limits": profile.crosses_rate_limits,
                "api_url": self.environment.host,
                "yjs_url": opts.yjs_url,
                "role": self.role,
                "processes": getattr(opts, "processes", None),
                "max_users": self.max_users,
                "started_at": started_at,
                "pid": os.getpid(),
            }
        )
        write_json_atomic(
            self.run_dir / "run.json",
            {
                "run_id": self.run_id,
                "profile": profile.summary(),
                "target": {
                    "api_url": self.environment.host,
                    "yjs_url": opts.yjs_url,
                    "metrics_token_given": bool(opts.metrics_token),  # the token itself is never written
                },
                "locust": {"html": opts.html_file, "json": opts.json_file + ".json", "role": self.role},
                "started_at": self.ledger.meta["started_at"],
            },
        )
        self.flush()

    # -- flushing --------------------------------------------------------------------------
    def _flush_loop(self, interval: float) -> None:
        """Flush every `interval` s, or less often once a write is slow (see `flush_pause`)."""
        pause = interval
        while not self._finished:
            gevent.sleep(pause)
            if not self._finished:
                started = time.perf_counter()
                self.flush()
                pause = flush_pause(interval, time.perf_counter() - started)

    def flush(self) -> None:
        """Write ledger.json and phases.json now (atomic), incomplete unless finished."""
        if self.run_dir is None:
            return
        reason = self._reason or "the run has not finished (or was killed)"
        self.ledger.write(self.run_dir / "ledger.json", complete=self._complete, incomplete_reason=reason)
        write_json_atomic(self.run_dir / "phases.json", [p.to_dict() for p in self.ledger.phases])

    def finish(self, drained: bool, reason: str = "") -> None:
        """The shape ends the run: a confirmed drain makes the ledger complete."""
        if self._finished or self.role == "worker":
            return
        self._complete = drained
        self._reason = "" if drained else (reason or "the drain did not confirm that every user stopped")
        self.ledger.meta["finished_at"] = time.time()
        self.flush()
        self._finished = True

    def on_quitting(self) -> None:
        """Last chance: a run stopped another way (Ctrl-C, --run-time) stays incomplete."""
        if self.role == "worker" or self.run_dir is None:
            return
        if not self._finished:
            self.ledger.phase_end()
            self._reason = self._reason or "the run was stopped before its profile finished"
            self.ledger.meta["finished_at"] = time.time()
            self._finished = True
        # late worker deltas (their final report after quit) are merged; rewrite once more
        self.flush()

    def _on_sigterm(self) -> None:
        """SIGTERM ends a shape run the way the shape's own end does, leaving it incomplete.

        Headless Locust installs its SIGTERM handler only after a shape run returns, so
        without this a terminated run died on the spot: no quitting event, no final flush, no
        Locust reports. Stopping the shape greenlet lets Locust's normal shutdown follow.
        """
        if self._finished:
            return
        self._reason = "the run was stopped (SIGTERM) before its profile finished"
        runner = self.environment.runner
        shape = getattr(runner, "shape_greenlet", None)
        if shape is not None:
            shape.kill(block=False)
        else:
            gevent.spawn(runner.quit)

    # -- worker -> master ------------------------------------------------------------------
    def _on_report_to_master(self, client_id: str, data: dict[str, Any]) -> None:
        runner = self.environment.runner
        user_count = runner.user_count if runner is not None else 0
        delta = self.ledger.drain()
        data[REPORT_KEY] = {"ledger": delta.to_dict(), "user_count": user_count, "pid": os.getpid()}

    def _on_worker_report(self, client_id: str, data: dict[str, Any]) -> None:
        report = data.get(REPORT_KEY)
        if not report:
            return
        self.ledger.merge(Ledger.from_dict(report["ledger"], source=f"worker {client_id}"))
        users = int(report.get("user_count", 0))
        self.worker_last[client_id] = (time.time(), users)
        # "final": sent after the drain began, with no user left running on that worker
        self.ledger.note_worker_report(client_id, final=self._drain_at is not None and users == 0)

    # -- drain -----------------------------------------------------------------------------
    def drain_started(self, at: float) -> None:
        self._drain_at = at

    def drained(self, runner: Any, since: float) -> bool:
        """True once no user runs anywhere and every worker reported after the drain began."""
        if runner.user_count != 0:
            return False
        if self.role != "master":
            return True
        workers = [client.id for client in runner.clients.all]
        if not workers:
            return True
        for worker_id in workers:
            last = self.worker_last.get(worker_id)
            if last is None or last[0] < since or last[1] != 0:
                return False
        return True

    def drain_problem(self, runner: Any) -> str:
        if runner.user_count:
            return f"{runner.user_count} users were still running {self.drain_timeout:g} s after the drain began"
        missing = [w for w, (at, n) in self.worker_last.items() if self._drain_at and (at < self._drain_at or n)]
        return f"workers {missing} sent no final report within {self.drain_timeout:g} s of the drain"

    def next_user_number(self) -> int:
        self.user_seq += 1
        return self.user_seq


RUNTIME = Runtime()


def die(message: str) -> None:
    """End the process with one line naming the cause and the fix (exit status 2)."""
    sys.stderr.write(f"codesync-load: error: {message}\n")
    sys.stderr.flush()
    stop_forked_workers()
    sys.exit(2)


def stop_forked_workers() -> None:
    """SIGTERM the workers `--processes` forked from this process, by PID.

    Locust's own exit hook does not stop children that are still alive, and a master that
    refuses to start never tells its workers to quit: they would linger.
    """
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1 and fields[1] == str(me):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGTERM)


@events.init_command_line_parser.add_listener
def _on_parser(parser: Any, **_: Any) -> None:
    add_options(parser)


@events.init.add_listener
def _on_init(environment: Any, runner: Any = None, **_: Any) -> None:
    if runner is None:  # e.g. `locust --list`: nothing to run
        return
    RUNTIME.attach(environment, runner)


@events.test_start.add_listener
def _on_test_start(environment: Any, **_: Any) -> None:
    RUNTIME.refresh_from_master()


@events.quitting.add_listener
def _on_quitting(environment: Any, **_: Any) -> None:
    RUNTIME.on_quitting()
