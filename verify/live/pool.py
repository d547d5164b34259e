"""Stacks started on demand, one per profile, reused by the scenarios that share its faults.

    >>> pool = StackPool(local_stack_factory(tmp_path))    # rules compressed 60x, 1 s scrapes
    >>> stack = pool.get("faulty")       # started now: twin with error-burst=0.5, slow-route=2500
    >>> pool.get("faulty") is stack      # reused
    True
    >>> pool.retire("healthy")           # after ServiceDown stopped its twin
    >>> pool.close()                     # every stack down, by PID

Starting a stack costs seconds; an alert scenario needs a twin whose faults were fixed at
start. The pool starts each profile's stack once, hands it to every scenario of that
profile, and takes down what it started, also when a scenario failed.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable
from pathlib import Path

from codesync_load.errors import HarnessError
from codesync_load.stack import Stack, open_stack
from verify.live.scenarios import STACKS

StackFactory = Callable[[str, tuple[str, ...]], Stack]


def local_stack_factory(
    state_root: str | Path,
    *,
    compress: float = 60.0,
    scrape_interval: str = "1s",
    bcrypt_rounds: int | None = 4,
    monitoring_dir: str | Path | None = None,
) -> StackFactory:
    """Local stacks, each in its own state directory under `state_root` (never a shared one).

    Compressed 60x by default: a 5m window becomes 5 s, just above the floor of 4 scrapes the
    stack clamps ranges to (4 s at 1 s scrapes), so each scenario proves its alert in about
    ten seconds; further compression would only be clamped. `monitoring_dir`: the rules and
    routes the stacks run (default monitoring/). bcrypt cost 4 by default: the
    scenarios register users, and cost 12 (~250 ms of twin CPU per user) measures bcrypt,
    not alerting.
    """
    counter = itertools.count(1)

    def factory(profile: str, faults: tuple[str, ...]) -> Stack:
        state_dir = Path(state_root) / f"{profile}-{next(counter)}"
        args = ["--bcrypt-rounds", str(bcrypt_rounds)] if bcrypt_rounds else []
        return open_stack(
            "local",
            state_dir=str(state_dir),
            faults=list(faults),
            compress=compress,
            scrape_interval=scrape_interval,
            twin_args=args,
            monitoring_dir=monitoring_dir,
        )

    return factory


class StackPool:
    """One up stack per profile at a time; `close()` takes them all down."""

    breakable = True  # its twins take faults and may be stopped: every scenario runs live
    label = "on the embedded twin"

    def __init__(self, factory: StackFactory, profiles: dict[str, tuple[str, ...]] | None = None) -> None:
        self.factory = factory
        self.profiles = dict(profiles or STACKS)
        self.stacks: dict[str, Stack] = {}
        self.started = 0

    def get(self, profile: str) -> Stack:
        if profile not in self.profiles:
            raise HarnessError(f"unknown stack profile {profile!r}; use one of {', '.join(self.profiles)}")
        stack = self.stacks.get(profile)
        if stack is None:
            stack = self.factory(profile, self.profiles[profile])
            stack.up()  # a failed up() leaves nothing running (Stack contract)
            self.stacks[profile] = stack
            self.started += 1
        return stack

    def retire(self, profile: str) -> None:
        """Take a profile's stack down; the next `get` starts a fresh one."""
        stack = self.stacks.pop(profile, None)
        if stack is not None:
            stack.down()

    def close(self) -> None:
        for profile in list(self.stacks):
            with contextlib.suppress(Exception):
                self.retire(profile)

    def __enter__(self) -> StackPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TargetPool:
    """The stack of a target the harness cannot break (a CodeSync it did not start).

    Every profile is that one stack; nothing is started, retired or stopped. Scenarios whose
    cause is traffic alone run live against it; the others are judged on generated series
    (verify/live/synthetic.py), because `breakable` is False.
    """

    breakable = False

    def __init__(self, stack: Stack, label: str) -> None:
        self.stack = stack
        self.label = label
        self.started = 0

    def get(self, profile: str) -> Stack:
        return self.stack

    def retire(self, profile: str) -> None:
        """Nothing to retire: the target is not the harness's."""

    def close(self) -> None:
        """Nothing to stop: the target is not the harness's."""
