"""yjs-eager-sync and socketio-early-events-handled: pass on a healthy twin, fail on the fault
that makes a server start listening only after an asynchronous check (real twins, PostgreSQL,
Redis, loopback sockets; the checks use nothing of the twin's internals)."""

from __future__ import annotations

import re

from codesync_load.twin_process import TwinProcess
from tests.verify_live.conftest import live_context, run
from verify.checks.eager import EAGER_CLIENTS, EARLY_JOINS, EARLY_USERS, JOINS_PER_USER


def test_eager_yjs_clients_all_sync_on_a_healthy_twin(healthy: TwinProcess) -> None:
    result = run("yjs-eager-sync", live_context(healthy))
    assert result.verdict == "pass", result.render()
    assert result.summary.startswith(f"{EAGER_CLIENTS} of {EAGER_CLIENTS} eager Yjs clients synced; time to sync p50 ")
    assert result.evidence is not None and [row[1] for row in result.evidence.rows] == ["synced"] * EAGER_CLIENTS


def test_yjs_late_listen_leaves_every_eager_client_unsynced(start_target) -> None:
    twin = start_target("yjs-late-listen=300")
    result = run("yjs-eager-sync", live_context(twin))
    assert result.verdict == "fail", result.render()
    assert result.summary.startswith(
        f"{EAGER_CLIENTS} of {EAGER_CLIENTS} eager clients unsynced after 3 s; first frame lost"
    ), result.render()
    # The server did speak (its SyncStep1, once it listened): only our first frame was lost.
    assert result.evidence is not None and {row[3] for row in result.evidence.rows} == {True}


def test_early_joins_are_all_handled_on_a_healthy_twin(healthy: TwinProcess) -> None:
    result = run("socketio-early-events-handled", live_context(healthy))
    assert result.verdict == "pass", result.render()
    assert re.match(rf"{EARLY_JOINS} of {EARLY_JOINS} session:join sent within \d+ ms of connect", result.summary)
    assert result.measured == f"{EARLY_JOINS} echoed, {EARLY_JOINS} heard"
    assert result.summary.endswith(f"handled ({JOINS_PER_USER} by each of {EARLY_USERS} users)")


def test_socketio_late_handlers_loses_the_joins_sent_on_connect(start_target) -> None:
    twin = start_target("socketio-late-handlers=300")
    result = run("socketio-early-events-handled", live_context(twin))
    assert result.verdict == "fail", result.render()
    assert re.match(
        rf"{EARLY_JOINS} of {EARLY_JOINS} session:join sent within \d+ ms of connect were lost \(0 proven by a chat "
        rf"echo, by {EARLY_USERS} of {EARLY_USERS} users losing one; the watcher heard 0 user:joined\)",
        result.summary,
    ), result.render()


def test_a_server_losing_one_user_in_five_has_its_lost_joins_counted(start_target) -> None:
    """The real server lost 2 of 10 joins. `socketio-late-handlers-some=0.2` makes every fifth
    user the server meets late (the watcher, first, is on time; the 4th joining user is not):
    with one user only, as the check was, all ten joins came from the watcher's user and passed."""
    twin = start_target("socketio-late-handlers-some=0.2")
    result = run("socketio-early-events-handled", live_context(twin))
    assert result.verdict == "fail", result.render()
    assert re.match(
        rf"{JOINS_PER_USER} of {EARLY_JOINS} session:join sent within \d+ ms of connect were lost "
        rf"\({EARLY_JOINS - JOINS_PER_USER} proven by a chat echo, by 1 of {EARLY_USERS} users losing one; "
        rf"the watcher heard {EARLY_JOINS - JOINS_PER_USER} user:joined\)",
        result.summary,
    ), result.render()
    assert result.evidence is not None
    lost_rows = [row[:2] for row in result.evidence.rows if str(row[-1]).startswith("no")]
    assert lost_rows == [(6, 3), (7, 3)], result.render()
