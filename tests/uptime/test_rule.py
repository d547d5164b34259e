"""The uptime rule on exact inputs: Uptime Kuma's retries and the user-outage comparison."""

from __future__ import annotations

from codesync_load.uptime import Contradiction, Transition, contradictions, transitions, user_outages, user_seconds


def test_two_failed_tries_are_not_down_three_are() -> None:
    assert transitions([(0, 1), (2, 0), (4, 0), (6, 1)]) == [Transition(0, "up")]
    assert transitions([(0, 1), (2, 0), (4, 0), (6, 0), (8, 0), (10, 1)]) == [
        Transition(0, "up"),
        Transition(6, "down"),
        Transition(10, "up"),
    ]


def test_user_seconds_and_outages_from_ledger_entries() -> None:
    entries = [((100, "ok"), 5), ((101, "failed"), 3), ((101, "ok"), 1), ((102, "failed"), 2), ((105, "ok"), 4)]
    seconds = user_seconds(entries)
    assert seconds == {100: (5, 0), 101: (1, 3), 102: (0, 2), 105: (4, 0)}
    assert user_outages(seconds) == [(101.0, 103.0)]


def test_probe_up_through_a_long_outage_is_a_contradiction_a_short_one_is_not_judged() -> None:
    seconds = {s: (0, 4) for s in range(100, 120)} | {s: (5, 0) for s in range(120, 130)}
    up_all_along = [Transition(90, "up")]
    found, short = contradictions(up_all_along, seconds, interval_s=2.0, end=130)
    assert found == [
        Contradiction("up while users failed", 100.0, 120.0, "80 requests failed over 20 s; the probe stayed up")
    ]
    assert short == []
    # the probe went down 6 s into it: agreement
    noticed = [Transition(90, "up"), Transition(106, "down"), Transition(121, "up")]
    assert contradictions(noticed, seconds, 2.0, 130) == ([], [])
    # a 3 s outage is shorter than (3 retries + 1) x 2 s: the probe cannot be held to it
    brief = {s: (0, 1) for s in range(100, 103)}
    assert contradictions(up_all_along, brief, 2.0, 130) == ([], ["3 s outage from 100 (shorter than 8 s)"])


def test_probe_down_while_users_were_served() -> None:
    seconds = {s: (3, 0) for s in range(100, 120)}
    found, _ = contradictions([Transition(90, "up"), Transition(104, "down")], seconds, 2.0, 120)
    assert found == [
        Contradiction(
            "down while users were served",
            104,
            120,
            "36 requests served in 12 s (107..118), none failed, while the probe said down",
        )
    ]


def test_an_outage_goes_on_across_seconds_without_requests_until_someone_is_served() -> None:
    sparse = {100: (0, 1), 103: (0, 2), 107: (1, 2), 110: (4, 0), 111: (0, 1)}
    assert user_outages(sparse) == [(100.0, 108.0), (111.0, 112.0)]
