"""The Yjs client against the upstream JavaScript y-websocket server (@y/websocket-server 0.1.1).

What must hold against the reference implementation: sync in both directions, convergence
after concurrent edits, one propagation sample per inserting edit of the other client, echoes
counted apart from the others' updates, awareness cursors delivered, and source-address
binding.
"""

from __future__ import annotations

import random

from scenarios.clients.propagation import EditRegistry
from scenarios.clients.yjs import YjsClient, YjsEvent


def test_sync_brings_existing_text_to_a_new_client(upstream_yws: str, doc_name: str) -> None:
    with YjsClient(upstream_yws, doc_name, registry=EditRegistry()) as first:
        assert first.synced and first.sync_time is not None and first.sync_time >= first.connect_time > 0
        first.insert(0, "hello")
        first.wait_for(lambda c: c.echoes_received == 1, what="echo of the insert")
        with YjsClient(upstream_yws, doc_name, registry=EditRegistry()) as second:
            assert second.text() == "hello"
            # the handshake as the server saw it: our SyncStep2 answer, then our own SyncStep1
            assert second.frames_sent["sync_step1"] == 1
            assert second.frames_sent["sync_step2"] == 1
            assert second.frames_received["sync_step1"] == 1
            assert second.frames_received["sync_step2"] == 1


def test_two_clients_converge_after_concurrent_edits(upstream_yws: str, doc_name: str) -> None:
    registry = EditRegistry()
    a = YjsClient(upstream_yws, doc_name, name="a", registry=registry)
    b = YjsClient(upstream_yws, doc_name, name="b", registry=registry)
    a.connect()
    b.connect()
    try:
        rng_a, rng_b = random.Random(1), random.Random(2)
        for _ in range(25):
            a.type_near_start(rng_a)
            b.type_near_start(rng_b)
        b.delete(0, 3)
        # a replaces only after it has seen b's deletion, so the two never delete the same
        # characters (a concurrent overlap would make both the length and b's echo racy)
        a.wait_for(lambda c: c.updates_received == 26, what="26 updates from b at a")
        a.replace(0, 2, "XY")
        b.wait_for(lambda c: c.updates_received == 26, what="26 updates from a at b")
        a.wait_for(lambda c: c.echoes_received == 26, what="26 echoes at a")
        b.wait_for(lambda c: c.echoes_received == 26, what="26 echoes at b")
        assert a.text() == b.text()
        assert len(a.text()) == 50 - 3 - 2 + 2
        assert a.updates_sent == 26 and b.updates_sent == 26
        assert a.updates_applied == 26 and b.updates_applied == 26
        # b's pure deletion has no sample; a's replace inserts, so it has one
        assert len(a.latencies) == 25 and len(b.latencies) == 26
    finally:
        a.close()
        b.close()


def test_n_edits_give_exactly_n_samples_and_echoes_counted_apart(upstream_yws: str, doc_name: str) -> None:
    registry = EditRegistry()
    with (
        YjsClient(upstream_yws, doc_name, registry=registry) as a,
        YjsClient(upstream_yws, doc_name, registry=registry) as b,
    ):
        n = 7
        for i in range(n):
            a.insert(0, f"{i}")
        a.delete(0, 1)  # a pure deletion: counted as sent, never sampled
        b.wait_for(lambda c: c.updates_received == n + 1, what="all of a's updates at b")
        a.wait_for(lambda c: c.echoes_received == n + 1, what="all echoes at a")
        assert len(b.latencies) == n
        assert all(0 < sample < 5 for sample in b.latencies)
        assert a.latencies == []  # our own echoes are not propagation
        assert a.updates_received == 0 and a.updates_applied == 0
        assert b.echoes_received == 0
        assert b.text() == a.text() == "543210"


def test_cross_process_mode_pairs_awareness_announcements(upstream_yws: str, doc_name: str) -> None:
    # Different registries stand for different processes: the receiver cannot see the sender's
    # registry and must pair the wall-clock announcements carried in awareness.
    heard: list[YjsEvent] = []
    with (
        # patient clients: b's awareness frames are a's announcements alone
        YjsClient(upstream_yws, doc_name, registry=EditRegistry(), announce_edits=True, eager=False) as a,
        YjsClient(upstream_yws, doc_name, registry=EditRegistry(), observers=(heard.append,), eager=False) as b,
    ):
        for i in range(5):
            a.insert(0, str(i))
        b.wait_for(lambda c: c.latency_count == 5 and c.frames_received["awareness"] == 5, what="5 samples at b")
        assert all(0 <= sample < 5 for sample in b.latencies)
        assert a.frames_sent["awareness"] == 5
        assert [e.value for e in heard if e.what == "latency"] == b.latencies


def test_cursor_awareness_reaches_the_other_client(upstream_yws: str, doc_name: str) -> None:
    with (  # patient clients: the awareness counted is the cursor's alone
        YjsClient(upstream_yws, doc_name, name="ada", file="src/main.py", eager=False) as a,
        YjsClient(upstream_yws, doc_name, eager=False) as b,
    ):
        a.set_cursor(3, 14)
        b.wait_for(lambda c: a.client_id in c.awareness_states, what="a's awareness at b")
        assert b.awareness_states[a.client_id] == {
            "user": {"name": "ada", "color": "#30bced", "file": "src/main.py"},
            "cursor": {"line": 3, "column": 14},
        }
        a.close()
        b.wait_for(lambda c: a.client_id not in c.awareness_states, what="a's awareness removal at b")


def test_source_address_binding(upstream_yws: str, doc_name: str) -> None:
    with YjsClient(upstream_yws, doc_name, source_address="127.0.0.7") as client:
        assert client._ws is not None
        assert client._ws.local_address[0] == "127.0.0.7"


def test_five_editors_each_see_every_other_edit_once(upstream_yws: str, doc_name: str) -> None:
    registry = EditRegistry()
    editors = [YjsClient(upstream_yws, doc_name, name=f"e{i}", registry=registry) for i in range(5)]
    try:
        for editor in editors:
            editor.connect()
        rngs = [random.Random(i) for i in range(5)]
        for _ in range(20):
            for editor, rng in zip(editors, rngs, strict=True):
                editor.type_near_start(rng)
        for editor in editors:
            editor.wait_for(lambda c: c.updates_received == 80 and c.echoes_received == 20, what="4x20 updates")
        texts = {editor.text() for editor in editors}
        assert len(texts) == 1 and len(texts.pop()) == 100
        assert [len(editor.latencies) for editor in editors] == [80] * 5
    finally:
        for editor in editors:
            editor.close()
