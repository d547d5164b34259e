"""The load shape: the profile's stages in order, then a drain, then the end of the run.

    >>> # imported by the locustfiles; Locust instantiates it and calls tick() every second
    >>> from _shape import ProfileShape

Each tick returns (users, spawn rate, user classes with a positive weight) for the stage that
is running, and records each stage's window in the ledger as a phase. After the last stage
the shape asks for 0 users ("drain") and ends the run (returns None) only once every user has
stopped and, on a master, every worker has reported its last ledger delta: that is what
makes the merged counts exact. The drain is bounded (--drain-timeout); when it times out the
ledger says so and stays incomplete.
"""

from __future__ import annotations

import time

from _runtime import RUNTIME
from locust import LoadTestShape

# Users are stopped this fast in the drain (Locust warns above 100 per second and worker).
DRAIN_SPAWN_RATE = 100.0


class ProfileShape(LoadTestShape):
    """Stages from the profile named by --profile."""

    def __init__(self) -> None:
        super().__init__()
        self._stage_name: str | None = None
        self._drain_started: float | None = None

    def reset_time(self) -> None:
        # Locust resets the clock when the shape starts, after a first tick may already have
        # opened the first phase: keep that phase rather than record it twice.
        super().reset_time()
        self._drain_started = None

    def tick(self) -> tuple[int, float, list] | None:
        profile = RUNTIME.profile
        if profile is None:
            return None
        classes = RUNTIME.active_user_classes(self.runner)
        stage = profile.stage_at(self.get_run_time())
        if stage is not None:
            if stage.name != self._stage_name:
                self._stage_name = stage.name
                RUNTIME.ledger.phase_start(stage.name)
                RUNTIME.flush()
            return RUNTIME.cap_users(stage.users), stage.spawn_rate, classes
        if self._drain_started is None:
            self._drain_started = time.time()
            RUNTIME.ledger.phase_start("drain", at=self._drain_started)
            RUNTIME.drain_started(self._drain_started)
        if RUNTIME.drained(self.runner, self._drain_started):
            RUNTIME.ledger.phase_end()
            RUNTIME.finish(drained=True)
            return None
        if time.time() - self._drain_started > RUNTIME.drain_timeout:
            RUNTIME.ledger.phase_end()
            RUNTIME.finish(drained=False, reason=RUNTIME.drain_problem(self.runner))
            return None
        return 0, DRAIN_SPAWN_RATE, classes
