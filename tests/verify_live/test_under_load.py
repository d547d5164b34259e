"""Integrity checks run during load stay exact, and bad input to the live parts is one clear line.

The checks claim they may run while a load run is going on: they spend fresh users and
fresh client addresses only (rate limits are keyed per user for REST and Socket.IO, per
client IP for Yjs, and counted under those labels). Here every check of the integrity group
runs while other users load the target with traffic of the same kinds: one floods search
past its limit, one keeps opening Yjs connections past its address's limit, one keeps
opening Socket.IO connections past its own limit (each moving the same counter family,
other series), and quiet users browse, save, type on Yjs and chat on Socket.IO.
"""

from __future__ import annotations

import contextlib
from collections import Counter

import pytest

from codesync_load.errors import HarnessError
from codesync_load.twin_process import TwinProcess
from tests.verify_live.conftest import (
    CSRF_ROUTES,
    MATRIX_PROBES,
    TOKEN,
    authz_refusals,
    csrf_refusals,
    hostile_answers,
    live_context,
)
from verify.checks import REGISTRY, CheckResult
from verify.live import LiveTarget, StackPool, local_stack_factory
from verify.live.driver import poll
from verify.live.limits import LIMITS, SIO_REFUSED_DISCONNECT, YJS_REFUSED, exhaust
from verify.live.scrape import read_metrics, sample
from verify.live.traffic import Traffic

INTEGRITY = [name for name, chk in REGISTRY.items() if chk.group == "integrity"]
EXPECTED_INTEGRITY = {  # a registry that silently loses a check fails here, not by running fewer
    "yjs-eager-sync",
    "socketio-early-events-handled",
    "metrics-token-enforced",
    "csrf-enforced",
    "authorization-matrix",
    "rate-limit-counted-files",
    "rate-limit-counted-search",
    "rate-limit-counted-socketio",
    "rate-limit-counted-yjs",
    "no-yjs-edit-lost",
    "hostile-inputs-harmless",
}
RATE_LIMIT_HITS = "codesync_rate_limit_hits_total"
EXTRA = 3  # refusals each rate-limit check provokes past its limit


# What each background traffic answers when it does its job: the telltale outcome it keeps
# producing around every check, and the whole set of outcomes it produces (nothing else).
TELLTALE = {
    "search-flood": "429",
    "healthy-mix": "typed",
    "yjs-over-limit": YJS_REFUSED[0],
    "socketio-over-limit": SIO_REFUSED_DISCONNECT,  # the twin refuses in CodeSync's shape by default
    "socketio-chat": "chatted",
}
OUTCOMES = {
    "search-flood": {"200", "429"},
    "healthy-mix": {"200", "typed"},
    "yjs-over-limit": {YJS_REFUSED[0]},
    "socketio-over-limit": {SIO_REFUSED_DISCONNECT},
    "socketio-chat": {"chatted"},
}


def _telltales(traffics: dict[str, Traffic]) -> dict[str, int]:
    return {name: traffic.outcomes[TELLTALE[name]] for name, traffic in traffics.items()}


def _summaries(traffics: dict[str, Traffic]) -> str:
    return "; ".join(f"{name}: {traffic.summary()}" for name, traffic in traffics.items())


def test_integrity_checks_are_exact_while_other_users_load_the_target(start_target) -> None:
    """Every integrity check of the registry passes, with its exact numbers, under load.

    Five traffics run from before the first check until after the last: search-flood (REST,
    refused 429), yjs-over-limit (Yjs connections from another address, closed 1008), a
    Socket.IO flood by another user (connections refused), healthy-mix (REST and a Yjs
    editor typing) and a Socket.IO chat. Each produced its telltale outcome before every
    check started and again after it ended (the load ran through each check), none produced
    any other outcome, and at the end each rate-limit family on each process had moved by
    exactly the checks' refusals plus the floods'.
    """
    assert len(INTEGRITY) == 11 and set(INTEGRITY) == EXPECTED_INTEGRITY, INTEGRITY
    twin: TwinProcess = start_target()
    target = LiveTarget(twin.api_url, twin.yjs_url, TOKEN)
    results: dict[str, CheckResult] = {}
    with contextlib.ExitStack() as running:
        traffics = {name: running.enter_context(Traffic.start(target, name)) for name in TELLTALE}
        # Under load = every traffic already answers as it should when the first check starts.
        assert poll(lambda: all(_telltales(traffics).values()), 30), _summaries(traffics)
        for name in INTEGRITY:
            before = _telltales(traffics)
            results[name] = REGISTRY[name].run(live_context(twin))
            again = poll(lambda before=before: all(n > before[k] for k, n in _telltales(traffics).items()), 30)
            assert again, f"a traffic stopped around {name}: {before} -> {_telltales(traffics)}; {_summaries(traffics)}"
        running.close()  # every loop stopped and joined: no refusal still in flight when counters are read
        outcomes = {name: Counter(traffic.outcomes) for name, traffic in traffics.items()}
        summaries = _summaries(traffics)

    for result in results.values():
        assert result.verdict == "pass", result.render()

    # -- each check's exact numbers ---------------------------------------------------------------
    token = results["metrics-token-enforced"]
    assert token.measured == "6 of 6 answers as expected", token.render()
    assert token.evidence is not None
    assert [(row[0].split()[0], *row[1:]) for row in token.evidence.rows] == [
        (where, *answer)
        for where in ("API", "Yjs")
        for answer in (("none", 401, 401), ("wrong bearer", 403, 403), ("right bearer", 200, 200))
    ]

    csrf = results["csrf-enforced"]
    assert csrf.measured == f"{2 * CSRF_ROUTES} refusals", csrf.render()
    csrf_refusals(csrf)
    afterwards = [row for row in csrf.evidence.rows if row[1] == "-"]
    assert [row[2:4] for row in afterwards if row[0] != "GET invitations afterwards"] == [
        (200, "csrf original"),  # the session: neither renamed nor deleted
        (404, "NOT_FOUND"),  # the file a refused PUT would have written
        (200, None),  # the owner: not logged out
    ], csrf.render()
    (invitations,) = [row for row in afterwards if row[0] == "GET invitations afterwards"]
    assert invitations[2] == 200 and len(invitations[3]) == 1 and invitations[3][0][1] is None, csrf.render()

    authz = results["authorization-matrix"]
    assert authz.measured == f"{MATRIX_PROBES} refused as expected, 0 otherwise", authz.render()
    assert authz_refusals(authz) == {(403, "FORBIDDEN")}, authz.render()

    for limiter, limit in LIMITS.items():
        result = results[f"rate-limit-counted-{limiter}"]
        assert result.measured == f"{limit} admitted, {EXTRA} refused, counter {EXTRA}", result.render()

    edits = results["no-yjs-edit-lost"]
    assert edits.measured == "150 chars reloaded", edits.render()  # 3 editors x 10 edits of 5 chars
    assert edits.evidence is not None
    rows = {row[0]: row[1:] for row in edits.evidence.rows}
    assert [rows[f"editor {e}"] for e in range(3)] == [(150, True)] * 3, edits.render()
    assert rows["newcomer after all left"] == (150, True), edits.render()
    # The other Yjs traffic keeps its one document loaded or is refused before loading any, so
    # the process-wide documents gauge fell because this document was unloaded: the newcomer
    # read it back from storage, not from memory.
    assert rows["document unloaded before reload"] == ("yes", "-"), edits.render()

    hostile = results["hostile-inputs-harmless"]
    answers = hostile_answers(hostile)
    assert all(row[3] is True for row in hostile.evidence.rows), hostile.render()
    assert answers["file content afterwards"] == "200 intact"
    assert answers["Yjs document afterwards (hostile frames sent to it)"] == "intact"

    # -- the load was real and only what it should be ------------------------------------------
    assert {name: set(counts) for name, counts in outcomes.items()} == OUTCOMES, summaries
    assert outcomes["search-flood"]["200"] == LIMITS["search"], summaries  # its 30, then refused throughout
    api = read_metrics(twin.api_url, TOKEN)
    yjs = read_metrics(target.yjs_http_url, TOKEN)
    counted = {
        "API, API port": sample(api, RATE_LIMIT_HITS, type="API"),
        "WS, API port": sample(api, RATE_LIMIT_HITS, type="WS"),
        "WS, Yjs port": sample(yjs, RATE_LIMIT_HITS, type="WS"),
    }
    refused = {
        "API, API port": 2 * EXTRA + outcomes["search-flood"]["429"],  # files + search checks, the flood
        "WS, API port": EXTRA + outcomes["socketio-over-limit"][SIO_REFUSED_DISCONNECT],
        "WS, Yjs port": EXTRA + outcomes["yjs-over-limit"][YJS_REFUSED[0]],
    }
    assert counted == refused, summaries


def test_unknown_names_are_one_line_errors(start_target, tmp_path) -> None:
    twin: TwinProcess = start_target()
    target = LiveTarget(twin.api_url, twin.yjs_url, None)
    with pytest.raises(HarnessError, match=r"^unknown traffic recipe 'flood'; use one of sessions-list, "):
        Traffic.start(target, "flood")
    with pytest.raises(HarnessError, match=r"^unknown limiter 'chat'; use one of files, search, socketio, yjs$"):
        exhaust(target, "chat")
    pool = StackPool(local_stack_factory(tmp_path))
    with pytest.raises(HarnessError, match=r"^unknown stack profile 'broken'; use one of healthy, faulty$"):
        pool.get("broken")
    assert pool.started == 0


def test_a_wrong_metrics_token_for_reading_counters_is_one_line(start_target) -> None:
    twin: TwinProcess = start_target()
    with pytest.raises(HarnessError, match=r"/metrics answered HTTP 403; pass the target's METRICS_TOKEN$"):
        read_metrics(twin.api_url, "not-the-token")
