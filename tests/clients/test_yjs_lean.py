"""LeanYjsConnection (the Locust users' Yjs client) against the twin and the upstream server.

Run in a gevent-patched subprocess (tests/clients/lean_probe.py), as under Locust. What must
hold on both servers: N inserting edits give exactly N latency samples at the other client of
the process and none at the sender, whose echoes are counted apart; a pure deletion is sent
and echoed but never sampled; cursors travel as the browser's awareness state and are removed
on close; cross-process announcements pair; and `scenarios.recording` books a lean session
exactly like the same session run on YjsClient.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_probe


def _probe(url: str) -> dict:
    return run_probe(Path(__file__).with_name("lean_probe.py"), url)


@pytest.fixture(params=["twin", "upstream"])
def probed(request: pytest.FixtureRequest) -> dict:
    if request.param == "twin":
        url = request.getfixturevalue("twin").yjs_url
    else:
        url = request.getfixturevalue("upstream_yws")
    return _probe(url)


def _check_samples_and_echoes(out: dict) -> None:
    assert out["starts"] == list(range(7))  # one character each: clocks 0..6
    assert out["deletion"] is None
    assert out["texts"] == ["543210", "543210"]
    # [sent, received, applied, echoes, latency samples]
    assert out["a"] == [8, 0, 0, 8, 0]
    assert out["b"] == [0, 8, 8, 0, 7]
    assert out["b_kept"] == 7 and out["b_samples_in_range"] and out["b_observed_latencies_equal_kept"]
    # Eager clients: each sends its awareness state on open; the server relays it to everyone of
    # the document, the sender included (a hears its own and b's).
    assert out["events_a"] == {
        "sent:sync_step1": 1,
        "sent:sync_step2": 1,
        "sent:awareness": 1,
        "received:sync_step1": 1,
        "received:sync_step2": 1,
        "received:awareness": 2,
        "sent:update": 8,
        "received:echo": 8,
    }
    events_b = dict(out["events_b"])
    events_b.pop("received:awareness", None)  # whatever the server relays on join
    assert events_b == {
        "sent:awareness": 1,
        "sent:sync_step1": 1,
        "sent:sync_step2": 1,
        "received:sync_step1": 1,
        "received:sync_step2": 1,
        "received:update": 8,
        "latency:propagation": 7,
    }
    message, waited = out["timeout"]
    assert "a ninth update not reached within 0.3 s" in message and waited < 2


def test_lean_connection_samples_echoes_awareness_and_ledger(probed: dict) -> None:
    _check_samples_and_echoes(probed["samples_and_echoes"])

    aware = probed["awareness"]
    assert aware["state"] == {
        "user": {"name": "ada", "color": "#30bced", "file": "src/main.py"},
        "cursor": {"line": 3, "column": 14},
    }
    assert aware["a_sent"] == 2  # the cursor, then "gone" on close
    assert aware["counting_states"] is None and aware["counting_received"] == 2

    assert probed["announced"] == {"samples": 5, "in_range": True, "a_aw": 5}

    lean, reference = probed["ledger_lean"], probed["ledger_yjsclient"]
    assert reference.pop("awareness_received_final") in (5, 6)  # YjsClient may hear its own "gone"
    assert lean.pop("awareness_received_final") == 5  # the lean connection stops reading on close
    assert lean == reference
    assert lean["awareness_received_before_close"] == 3
    assert lean["samples"] == 24  # 6 inserts of each editor at 2 others; the deletion unsampled
    assert lean["yjs_update|sent"] == 13 and lean["yjs_update|echo"] == 13
    assert lean["yjs_update|received"] == lean["yjs_update|applied"] == 26
    assert lean["yjs|awareness|sent"] == 2  # the cursor and "gone": what the server counts inbound
    assert lean["yjs|sync_step1|sent"] == lean["yjs|sync_step2|sent"] == 3
