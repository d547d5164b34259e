"""Gauges against the source of truth: distinct documents, and sessions across a restart.

    >>> attach_live(ctx, target=LiveTarget(api, yjs, token, restart=shell_restart("...")))
    >>> REGISTRY["gauges-match-source-of-truth"].run(ctx).verdict
    'pass'

Why: a gauge can move by exactly the right amount under load (the reconciliation checks) and
still count the wrong thing, or forget what it counted when the process restarts. Two facts a
client can establish without knowing the server's code:

- codesync_yjs_documents_active counts documents loaded, not connections: the check opens two
  connections to one fresh document and one to another; the gauge must rise by 2. It is read
  twice, 0.5 s apart: a wrong rise is claimed only when both reads agree (3 and 3: it counts
  connections), so that other clients of a shared target cannot fake the symptom; reads that
  disagree with each other and with 2 leave the documents half unjudged, and the summary says so.
- codesync_sessions_active is at least the number of sessions the API lists to an anonymous
  caller (PUBLIC ones: every listed session is active; PRIVATE ones are not listed, so the gauge
  may be higher), before and after a restart. The check creates two PUBLIC sessions first, so a
  gauge reset to 0 by the restart while sessions exist fails. Without a restart command the
  restart half is not judged and the summary says so.

Whether the real CodeSync reinitialises its gauges on restart is not stated anywhere: the
verdict says what was found, with the gauge and the API's count before and after.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from codesync_load.errors import is_server_error
from scenarios.clients.rest import RestClient
from scenarios.clients.yjs import YjsClient
from verify.checks.base import CheckResult, Evidence, TargetFault, check
from verify.live.actors import fresh_loopback, fresh_session, fresh_user
from verify.live.inputs import live_inputs
from verify.live.restart import restart_and_wait
from verify.live.scrape import read_metrics, sample

DOCS = "codesync_yjs_documents_active"
SESSIONS = "codesync_sessions_active"


def _public_sessions(api_url: str) -> int | None:
    """How many sessions the API lists to an anonymous caller (its `total`), None if it will not say."""
    client = RestClient(api_url)
    try:
        listed = client.list_sessions()
    finally:
        client.close()
    if is_server_error(listed.status):  # the target failed the listing: that says nothing about the gauge
        raise TargetFault(f"{listed.status} {listed.error_code} on GET /api/sessions", judging="the sessions gauge")
    if not listed.ok or not isinstance(listed.data, dict):
        return None
    total = listed.data.get("total")
    return int(total) if isinstance(total, int) else len(listed.data.get("sessions") or [])


def _documents_rise(target: Any, session_id: str) -> tuple[float, list[float]]:
    """(gauge before, gauge readings while 2 connections hold doc A and 1 holds doc B)."""
    before = sample(read_metrics(target.yjs_http_url, target.metrics_token), DOCS)
    address = fresh_loopback()
    names = [f"{session_id}:verify/gauge-a.txt", f"{session_id}:verify/gauge-a.txt", f"{session_id}:verify/gauge-b.txt"]
    clients = [YjsClient(target.yjs_url, name, registry=None, source_address=address) for name in names]
    try:
        for client in clients:
            client.connect()
        readings = []
        for _ in range(2):
            readings.append(sample(read_metrics(target.yjs_http_url, target.metrics_token), DOCS))
            time.sleep(0.5)
        return before, readings
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                client.close()


@check(
    "gauges-match-source-of-truth",
    group="live-gauges",  # live, like the integrity checks, but not one of them: it may restart the target
    symptom="a gauge counts the wrong thing (connections as documents) or forgets sessions on restart",
)
def gauges_match_source_of_truth(ctx: Any) -> CheckResult:
    target = live_inputs(ctx).require_target()
    evidence = Evidence(("what", "measured", "expected", "ok"))
    bad: list[str] = []
    owner = fresh_user(target.api_url, "gauges")
    try:
        first = fresh_session(owner, name="gauge truth 1")
        fresh_session(owner, name="gauge truth 2")
    finally:
        owner.close()

    before, readings = _documents_rise(target, first)
    rises = [r - before for r in readings]
    docs_ok = 2 in rises
    shown = ", ".join(f"{r:+g}" for r in rises)
    evidence.add(f"{DOCS} rise, 2 connections to doc A + 1 to doc B", shown, "+2", docs_ok)
    unjudged = ""
    if all(r == 3 for r in rises):
        bad.append(f"{DOCS} counts connections, not documents: it rose by 3 for 3 connections to 2 documents")
    elif not docs_ok and len(set(rises)) == 1:
        bad.append(f"{DOCS} rose by {rises[0]:g} for 2 documents just opened (expected 2)")
    elif not docs_ok:  # the two reads disagree: other clients moved the gauge meanwhile
        unjudged = f"; the documents gauge was not judged (other clients moved it: {shown})"

    def sessions_row(when: str) -> None:
        gauge = sample(read_metrics(target.api_url, target.metrics_token), SESSIONS)
        listed = _public_sessions(target.api_url)
        ok = listed is not None and gauge >= listed >= 2
        evidence.add(f"{SESSIONS} {when}", f"{gauge:g}", f">= {listed} listed (PUBLIC, to anyone)", ok)
        if listed is None:
            bad.append(f"GET /api/sessions did not list sessions {when}")
        elif not ok:
            bad.append(f"{SESSIONS} is {gauge:g} {when} while the API lists {listed} active sessions")

    sessions_row("before the restart" if target.restart else "now")
    restarted = ""
    if target.restart is not None:
        took = restart_and_wait(target)
        evidence.add("restart", f"answered again after {took:.1f} s", "-", True)
        sessions_row("after the restart")
        restarted = ", also after a restart"
    expected = f"{DOCS} +2 for 2 documents (3 connections); {SESSIONS} >= the sessions the API lists{restarted}"
    if bad:
        return CheckResult.failed("; ".join(bad), expected=expected, evidence=evidence)
    note = unjudged + ("" if target.restart is not None else " (no restart command given: not judged across a restart)")
    return CheckResult.passed(
        f"the documents gauge counts documents and the sessions gauge covers what the API lists{restarted}{note}",
        expected=expected,
        evidence=evidence,
    )
