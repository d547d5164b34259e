"""What the uptime probe saw, with Uptime Kuma's retry rule, held against what users felt.

    >>> tries = [(0.0, 1.0), (2.0, 0.0), (4.0, 0.0), (6.0, 0.0), (8.0, 1.0)]   # probe_success scrapes
    >>> transitions(tries)                   # down only at the 3rd failed try in a row, up at the 1st success
    [Transition(at=0.0, state='up'), Transition(at=6.0, state='down'), Transition(at=8.0, state='up')]
    >>> user_seconds(ledger)                 # {second: (served, failed)} from the ledger's `served` counts
    >>> user_outages(user_seconds(ledger))   # [(start, end), ...] seconds in which most requests failed

Pure functions of samples and ledger counts, so the check, the db-outage scenario and the
report apply one rule. "Users failing" is a second of the run in which at least half of the
HTTP requests failed (5xx or no answer) and one did; "users served" a second in which requests
were answered and none failed: in between (some failed, most did not) is neither, and is
never held against the probe.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

RETRIES = 3
# How the ledger names a second's HTTP outcomes (codesync_load.ledger, kind "served").
SERVED, FAILED = "ok", "failed"


@dataclass(frozen=True)
class Transition:
    at: float
    state: str  # "up" | "down"


def transitions(points: Sequence[tuple[float, float]], retries: int = RETRIES) -> list[Transition]:
    """The probe's state changes: up at a successful try, down at the `retries`-th failed try in
    a row (Uptime Kuma's "retries": a monitor is marked down only after that many). The first
    transition is the first state known (before it the probe was pending)."""
    out: list[Transition] = []
    failed = 0
    for at, value in sorted(points):
        state = None
        if value >= 1.0:
            failed = 0
            state = "up"
        else:
            failed += 1
            if failed >= retries:
                state = "down"
        if state and (not out or out[-1].state != state):
            out.append(Transition(at, state))
    return out


def state_at(changes: Sequence[Transition], at: float) -> str | None:
    """The probe's state at epoch `at` (None while still pending)."""
    state = None
    for change in changes:
        if change.at > at:
            break
        state = change.state
    return state


def down_periods(changes: Sequence[Transition], end: float) -> list[tuple[float, float]]:
    """[(went down, came back up or `end`)] of a transition list."""
    periods = []
    for index, change in enumerate(changes):
        if change.state == "down":
            back = next((c.at for c in changes[index + 1 :] if c.state == "up"), end)
            periods.append((change.at, back))
    return periods


def user_seconds(entries: Iterable[tuple[tuple[Any, ...], int]]) -> dict[int, tuple[int, int]]:
    """{epoch second: (requests served, requests failed)} from the ledger's `served` entries."""
    seconds: dict[int, list[int]] = {}
    for (second, outcome), count in entries:
        slot = seconds.setdefault(int(second), [0, 0])
        slot[0 if outcome == SERVED else 1] += count
    return {second: (ok, bad) for second, (ok, bad) in sorted(seconds.items())}


def is_failing(ok: int, failed: int) -> bool:
    """Users could not use the service in this second: at least half of the requests failed."""
    return failed > 0 and failed >= ok


def is_served(ok: int, failed: int) -> bool:
    return ok > 0 and failed == 0


def user_outages(seconds: dict[int, tuple[int, int]]) -> list[tuple[float, float]]:
    """Runs of failing seconds [(first second, end of the last one)]. A run goes on across seconds
    without requests and ends at the first second that is not failing: users are out until one
    is served (sparse traffic must not split one outage into many)."""
    out: list[list[float]] = []
    open_run = False
    for second, (ok, failed) in sorted(seconds.items()):
        if not is_failing(ok, failed):
            open_run = False
            continue
        if open_run:
            out[-1][1] = second + 1.0
        else:
            out.append([float(second), second + 1.0])
            open_run = True
    return [(start, end) for start, end in out]


@dataclass(frozen=True)
class Contradiction:
    kind: str  # "up while users failed" | "down while users were served"
    start: float
    end: float
    detail: str


def contradictions(
    changes: Sequence[Transition],
    seconds: dict[int, tuple[int, int]],
    interval_s: float,
    end: float,
    retries: int = RETRIES,
) -> tuple[list[Contradiction], list[str]]:
    """Where the probe and the users disagree, and the outages too short for the probe to judge.

    Up while users failed: a user outage long enough for `retries` tries plus one interval of
    phase (`(retries + 1) * interval_s`) during which the probe never went down (from its
    start to one interval after its end). Down while users were served: a second inside a down
    period, more than one interval after it began and before it ended, in which users were
    served and none failed (the probe may lag the recovery by one interval).
    """
    found: list[Contradiction] = []
    too_short: list[str] = []
    allowance = (retries + 1) * interval_s
    downs = down_periods(changes, end)
    for start, stop in user_outages(seconds):
        if stop - start < allowance:
            too_short.append(f"{stop - start:.0f} s outage from {start:.0f} (shorter than {allowance:g} s)")
            continue
        if not any(d_start <= stop + interval_s and d_end >= start for d_start, d_end in downs):
            failed = sum(seconds[s][1] for s in seconds if start <= s < stop)
            found.append(
                Contradiction(
                    "up while users failed",
                    start,
                    stop,
                    f"{failed} requests failed over {stop - start:.0f} s; the probe stayed "
                    f"{state_at(changes, stop) or 'pending'}",
                )
            )
    for d_start, d_end in downs:
        served = [s for s, (ok, bad) in seconds.items() if d_start + interval_s < s < d_end - 1 and is_served(ok, bad)]
        if served:
            count = sum(seconds[s][0] for s in served)
            found.append(
                Contradiction(
                    "down while users were served",
                    d_start,
                    d_end,
                    f"{count} requests served in {len(served)} s ({min(served)}..{max(served)}), none failed, "
                    "while the probe said down",
                )
            )
    return found, too_short
