"""Checks that clients as eager as the browser's lose nothing in their first moments.

    >>> attach_live(ctx, target=LiveTarget.from_stack(stack))
    >>> [r.verdict for r in run_checks(ctx, selected(["yjs-eager-sync", "socketio-early-events-handled"]))]
    ['pass', 'pass']

Browsers do not wait: y-websocket's client sends its SyncStep1 and awareness as soon as the
socket opens, socket.io-client emits `session:join` from its `connect` handler. A server that
starts listening to a connection only after an asynchronous check (a rate-limit query, say)
drops what arrived before: measured on CodeSync, 2 of 10 joins sent right after connect were
lost, and the old, patient harness showed only a participants gauge one short. Both checks use
the project's default (eager) clients and nothing of the twin: they run against any target.

- yjs-eager-sync: EAGER_CLIENTS eager Yjs clients open one fresh document at once, from a
  fresh loopback address; each must get the server's SyncStep2 (the answer to its SyncStep1
  sent on open) within SYNC_BOUND_S. One that does not has lost its first frame (it never
  sends SyncStep1 again, as the browser never does). Reports the time to sync.
- socketio-early-events-handled: a watcher joins a fresh PUBLIC session patiently (and proves
  it with a chat echo); then EARLY_USERS fresh users open JOINS_PER_USER eager connections each
  that emit `session:join` on connect (EARLY_JOINS in all). Each join must be heard by the
  watcher (`user:joined`) and proven by the joiner's own chat echo; a lost join is named with
  how soon after connect it was sent, and the count names how many users lost one. Several
  users, because a server's gap can be per user (a per-user check that misses its cache for
  some): one user's joins all pass or all fail, and a server losing 2 of 10 is caught only
  when the 10 come from more than one user.
"""

from __future__ import annotations

import contextlib
import statistics
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from scenarios.clients.socketio import SioError, SioServerError, SioTimeout, SocketIOClient
from scenarios.clients.yjs import YjsClient, YjsError, YjsSyncTimeout
from verify.checks.base import CheckResult, Evidence, check
from verify.live.actors import fresh_loopback, fresh_session, fresh_user, user_id
from verify.live.inputs import live_inputs

GROUP = "integrity"
EAGER_CLIENTS = 10
SYNC_BOUND_S = 3.0
EARLY_USERS = 5
JOINS_PER_USER = 2
EARLY_JOINS = EARLY_USERS * JOINS_PER_USER
HEAR_S = 3.0  # how long the watcher may take to hear every join
ECHO_S = 2.0  # how long a joiner's chat echo may take
WATCHER_SETTLE_S = 1.0  # the watcher is patient on purpose: it must be in the room first


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


# -- Yjs ---------------------------------------------------------------------------------------------


def _open_eager(yjs_url: str, document: str, address: str) -> tuple[str, float | None, bool]:
    """One eager client: ("synced" | "unsynced" | error name, time to sync, server's SyncStep1 seen)."""
    client = YjsClient(yjs_url, document, registry=None, source_address=address, sync_timeout=SYNC_BOUND_S)
    try:
        client.connect()
        return "synced", client.sync_time, client.server_step1_seen
    except YjsSyncTimeout:
        return "unsynced", None, client.server_step1_seen
    except YjsError as err:
        return type(err).__name__, None, client.server_step1_seen
    finally:
        client.close()


@check(
    "yjs-eager-sync",
    group=GROUP,
    symptom="eager Yjs clients (SyncStep1 on open, as the browser) stay unsynced: the server drops the first frame",
)
def yjs_eager_sync(ctx: Any) -> CheckResult:
    target = live_inputs(ctx).require_target()
    document = f"verify-eager-{uuid.uuid4().hex[:10]}"
    address = fresh_loopback()  # its own per-IP budget: EAGER_CLIENTS of 100
    with ThreadPoolExecutor(EAGER_CLIENTS) as pool:
        outcomes = list(pool.map(lambda _: _open_eager(target.yjs_url, document, address), range(EAGER_CLIENTS)))
    evidence = Evidence(("client", "outcome", "time to sync", "server's SyncStep1 seen"))
    for index, (outcome, took, step1) in enumerate(outcomes):
        evidence.add(index, outcome, _ms(took) if took is not None else f"> {SYNC_BOUND_S:g} s", step1)
    times = [took for outcome, took, _ in outcomes if outcome == "synced" and took is not None]
    unsynced = sum(1 for outcome, _, _ in outcomes if outcome == "unsynced")
    others = [outcome for outcome, _, _ in outcomes if outcome not in ("synced", "unsynced")]
    expected = f"{EAGER_CLIENTS} of {EAGER_CLIENTS} eager clients synced within {SYNC_BOUND_S:g} s"
    timing = f"time to sync p50 {_ms(statistics.median(times))}, max {_ms(max(times))}" if times else "none synced"
    if unsynced:
        return CheckResult.failed(
            f"{unsynced} of {EAGER_CLIENTS} eager clients unsynced after {SYNC_BOUND_S:g} s; first frame lost "
            "(the SyncStep1 sent on open got no SyncStep2)",
            measured=f"{len(times)} synced; {timing}",
            expected=expected,
            evidence=evidence,
        )
    if others:
        return CheckResult.failed(
            f"cannot judge eager sync: {len(others)} of {EAGER_CLIENTS} connections failed otherwise "
            f"({', '.join(sorted(set(others)))})",
            expected=expected,
            evidence=evidence,
        )
    return CheckResult.passed(
        f"{EAGER_CLIENTS} of {EAGER_CLIENTS} eager Yjs clients synced; {timing}",
        measured=timing,
        expected=expected,
        evidence=evidence,
    )


# -- Socket.IO ----------------------------------------------------------------------------------------


def _watcher(api_url: str, token: str | None, uid: str, session_id: str) -> SocketIOClient:
    """A client surely in the room: patient join, proven by a chat echo (retried once)."""
    watcher = SocketIOClient(api_url, token, user_id=uid, timeout=10.0)
    watcher.connect(join=session_id, settle=WATCHER_SETTLE_S)
    try:
        watcher.chat(session_id, timeout=ECHO_S)
    except (SioServerError, SioTimeout):
        watcher.join_confirmed(session_id, timeout=ECHO_S)
    return watcher


@check(
    "socketio-early-events-handled",
    group=GROUP,
    symptom="Socket.IO events emitted right after connect (the browser's session:join) are lost",
)
def socketio_early_events_handled(ctx: Any) -> CheckResult:
    target = live_inputs(ctx).require_target()
    owner = fresh_user(target.api_url, "early")
    try:
        session_id = fresh_session(owner)
        token, uid = owner.token, user_id(owner)
    finally:
        owner.close()
    users = []  # (token, id) of each joining user, registered before any of them connects
    for _ in range(EARLY_USERS):
        client = fresh_user(target.api_url, "early-joiner")
        try:
            users.append((client.token, user_id(client)))
        finally:
            client.close()
    watcher = _watcher(target.api_url, token, uid, session_id)
    joiners: list[tuple[int, SocketIOClient]] = []  # (user number, connection)
    try:
        heard_before = watcher.received["user:joined"]
        for number, (joiner_token, joiner_id) in enumerate(users):
            for _ in range(JOINS_PER_USER):
                joiner = SocketIOClient(target.api_url, joiner_token, user_id=joiner_id, timeout=10.0)
                joiners.append((number, joiner))
                joiner.connect(join=session_id, refusal_window=0)  # join emitted in the connect handler
        with contextlib.suppress(SioTimeout):  # a short count is judged below
            watcher.wait_for("user:joined", heard_before + EARLY_JOINS, timeout=HEAR_S)
        heard = watcher.received["user:joined"] - heard_before
        evidence = Evidence(("joiner", "user", "join sent after connect", "chat echo (join handled)"))
        echoed = 0
        losing_users = set()
        for index, (number, joiner) in enumerate(joiners):
            try:
                joiner.chat(session_id, timeout=ECHO_S)
                handled = "yes"
                echoed += 1
            except SioServerError as err:
                handled = f"no: {err}"
                losing_users.add(number)
            except SioError as err:
                handled = f"no ({type(err).__name__})"
                losing_users.add(number)
            evidence.add(index, number, _ms(joiner.join_sent_after), handled)
        evidence.add("watcher", "owner", "-", f"heard {heard} user:joined of {EARLY_JOINS}")
    finally:
        for client in (*(j for _, j in joiners), watcher):
            client.disconnect()
    sent_after = [j.join_sent_after for _, j in joiners if j.join_sent_after is not None]
    within = f"{max(sent_after) * 1000:.0f} ms" if sent_after else "moments"
    lost = EARLY_JOINS - echoed
    expected = (
        f"{EARLY_JOINS} of {EARLY_JOINS} joins ({JOINS_PER_USER} by each of {EARLY_USERS} users) handled: "
        f"a chat echo each, {EARLY_JOINS} user:joined heard"
    )
    measured = f"{echoed} echoed, {heard} heard"
    if lost or heard < EARLY_JOINS:
        return CheckResult.failed(
            f"{max(lost, EARLY_JOINS - heard)} of {EARLY_JOINS} session:join sent within {within} of connect were "
            f"lost ({echoed} proven by a chat echo, by {len(losing_users)} of {EARLY_USERS} users losing one; "
            f"the watcher heard {heard} user:joined)",
            measured=measured,
            expected=expected,
            evidence=evidence,
        )
    return CheckResult.passed(
        f"{EARLY_JOINS} of {EARLY_JOINS} session:join sent within {within} of connect were handled "
        f"({JOINS_PER_USER} by each of {EARLY_USERS} users)",
        measured=measured,
        expected=expected,
        evidence=evidence,
    )
