"""The polling helper retries only "not ready yet" (issue #12, item 7): a bug in a probe fails at once."""

from __future__ import annotations

import time

import pytest

from tests.stack._support import wait_for


def test_not_ready_errors_are_retried_until_the_probe_answers() -> None:
    answers = iter([ConnectionRefusedError("starting"), ValueError("partial JSON"), None, "ready"])

    def probe() -> str | None:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert wait_for(probe, 10, "ready", interval=0.001) == "ready"


def test_a_bug_in_the_probe_propagates_at_once_instead_of_timing_out() -> None:
    calls = []

    def probe() -> None:
        calls.append(1)
        raise KeyError("lastEvaluation")

    started = time.monotonic()
    with pytest.raises(KeyError):
        wait_for(probe, 30, "rule evaluated", interval=0.001)
    assert len(calls) == 1 and time.monotonic() - started < 5


def test_a_timeout_names_what_it_waited_for_and_the_last_answer() -> None:
    with pytest.raises(AssertionError, match=r"delivered: not within 0.05 s \(last: ConnectionRefusedError"):
        wait_for(lambda: (_ for _ in ()).throw(ConnectionRefusedError("down")), 0.05, "delivered", interval=0.01)
