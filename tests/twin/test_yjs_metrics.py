"""The Yjs port's /metrics moves by exactly what the traffic predicts, limits connections per
client IP as CodeSync does, and guards itself with METRICS_TOKEN like the API.

Every twin here is fresh, so each count starts from the twin's own zero and nothing else
talks to it: an expectation is an exact number, never "> 0".
"""

from __future__ import annotations

import time

import pytest
import requests
from pycrdt import create_update_message

from tests.twin._http import delta, scrape, value
from tests.twin._yjs import YjsTestClient, sync_step2, unique_document


def metrics_url(twin) -> str:
    return twin.yjs_url.replace("ws://", "http://", 1) + "/metrics"


def wait_value(twin, name: str, expected: float, timeout: float = 5.0, **labels: str) -> dict:
    """Scrape until a sample has the expected value (closes are processed asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(metrics_url(twin))
        if value(samples, name, **labels) == expected:
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}{labels} is {value(samples, name, **labels)}, expected {expected}")
        time.sleep(0.05)


def test_each_yjs_metric_moves_by_the_exact_amount_the_traffic_predicts(twin):
    before = scrape(metrics_url(twin))
    assert value(before, "codesync_websocket_connections_active", type="yjs") == 0
    assert value(before, "codesync_yjs_documents_active") == 0
    doc_a, doc_b = unique_document("a"), unique_document("b")
    a1, a2, b1 = (YjsTestClient(twin.yjs_url, d) for d in (doc_a, doc_a, doc_b))
    clients = [a1, a2, b1]
    try:
        for client in clients:
            client.sync()
        for i in range(3):
            a1.insert(0, f"a1-{i} ")
        for i in range(2):
            a2.insert(0, f"a2-{i} ")
        for i in range(4):
            b1.insert(0, f"b1-{i} ")
        a1.set_awareness(99, 1, {"user": {"name": "A"}})
        # Wait until the server has handled every frame sent (replies are ordered per socket).
        a1.wait_for(lambda: len(a1.updates_received) == 5, what="doc A updates")
        a2.wait_for(lambda: len(a2.updates_received) == 5 and 99 in a2.awareness, what="doc A updates + awareness")
        b1.wait_for(lambda: len(b1.updates_received) == 4, what="doc B updates")
        during = scrape(metrics_url(twin))
        frames = sum(c.frames_sent for c in clients)
        assert frames == 3 * 2 + 9 + 1  # SyncStep2 answer + SyncStep1 each, 9 updates, 1 awareness
        assert delta(before, during, "codesync_websocket_messages_total", type="yjs", direction="inbound") == frames
        assert delta(before, during, "codesync_websocket_messages_total", type="yjs", direction="outbound") == 0
        assert delta(before, during, "codesync_websocket_connections_total", type="yjs") == 3
        assert value(during, "codesync_websocket_connections_active", type="yjs") == 3
        assert value(during, "codesync_yjs_documents_active") == 2
        assert delta(before, during, "codesync_yjs_operations_total", operation_type="update") == 9
        assert delta(before, during, "codesync_yjs_sync_duration_seconds_count") == 3
        assert delta(before, during, "codesync_yjs_sync_duration_seconds_bucket", le="+Inf") == 3
        # The Socket.IO channel of the API process is not exported by the Yjs process' traffic.
        assert value(during, "codesync_websocket_connections_total", type="socketio") == 0
    finally:
        for client in clients:
            client.close()
    after = wait_value(twin, "codesync_websocket_connections_active", 0, type="yjs")
    after = wait_value(twin, "codesync_yjs_documents_active", 0)
    assert delta(before, after, "codesync_websocket_connections_total", type="yjs") == 3
    assert delta(before, after, "codesync_yjs_operations_total", operation_type="update") == 9


def test_garbage_frames_are_counted_inbound_and_close_the_gauge_back_down(twin):
    before = scrape(metrics_url(twin))
    doc = unique_document("garbage")
    frames = 0
    for frame in (b"\x07", "text"):
        with YjsTestClient(twin.yjs_url, doc) as bad:
            bad.wait_for(lambda b=bad: "step1" in b.kinds, what="SyncStep1")
            bad.send(frame)
            bad.closed_with()
            frames += bad.frames_sent
    assert frames == 4  # each: the automatic SyncStep2 answer, then the garbage frame
    after = wait_value(twin, "codesync_websocket_connections_active", 0, type="yjs")
    assert delta(before, after, "codesync_websocket_messages_total", type="yjs", direction="inbound") == 4
    assert delta(before, after, "codesync_websocket_connections_total", type="yjs") == 2
    assert delta(before, after, "codesync_yjs_operations_total") == 0


def test_an_update_that_brings_nothing_new_is_neither_echoed_nor_counted(twin):
    """CodeSync counts and persists in a Yjs 'update' handler, which only fires on a change."""
    doc = unique_document("known")
    before = scrape(metrics_url(twin))
    with YjsTestClient(twin.yjs_url, doc) as a, YjsTestClient(twin.yjs_url, doc) as b:
        a.sync()
        b.sync()
        first = a.insert(0, "once")
        b.wait_for(lambda: len(b.updates_received) == 1, what="the first update")
        a.send(create_update_message(first))  # the same update again
        a.insert(4, "!")  # frames are handled in order: when this arrives, the duplicate was handled
        b.wait_for(lambda: len(b.updates_received) == 2, what="the second update")
        a.wait_for(lambda: a.echoes == 2, what="both echoes")
        assert b.content == "once!"
        full_state = a.doc.get_update()
        # A reconnecting editor's SyncStep2 carries everything it has: nothing new to the server.
        with YjsTestClient(twin.yjs_url, doc) as again:
            again.sync()
            again.send(sync_step2(full_state))
            again.insert(0, ">")
            for client in (a, b, again):
                client.wait_for(lambda c=client: c.content == ">once!", what="the third update")
        assert len(b.updates_received) == 3
        assert a.echoes == 2
    after = wait_value(twin, "codesync_yjs_documents_active", 0)
    assert delta(before, after, "codesync_yjs_operations_total", operation_type="update") == 3


@pytest.mark.parametrize("state", ["in-process", "redis"])
def test_connection_101_from_one_ip_is_closed_with_1008_and_counted_once(twin_factory, request, state):
    env = {}
    if state == "redis":
        env = {
            "REDIS_URL": request.getfixturevalue("redis_url"),
            "CODESYNC_REDIS_PREFIX": request.getfixturevalue("redis_prefix"),
        }
    twin = twin_factory(env=env, extra_args=["--rate-window", "60"])
    before = scrape(metrics_url(twin))
    doc = unique_document("limit")
    for _ in range(100):
        with YjsTestClient(twin.yjs_url, doc) as ok:
            ok.wait_for(lambda c=ok: "step1" in c.kinds, what="SyncStep1 of an admitted connection")
    with YjsTestClient(twin.yjs_url, doc) as refused:
        assert refused.closed_with() == 1008
        assert refused.kinds == []  # refused before the server listens: no SyncStep1
    # Another client IP has its own window (the field notes' source-address trick).
    with YjsTestClient(twin.yjs_url, doc, source_ip="127.0.0.2") as elsewhere:
        elsewhere.sync()
    after = wait_value(twin, "codesync_websocket_connections_active", 0, type="yjs")
    assert delta(before, after, "codesync_rate_limit_hits_total", type="WS", user_id="127.0.0.1") == 1
    assert delta(before, after, "codesync_rate_limit_hits_total", type="WS", user_id="127.0.0.2") == 0
    assert delta(before, after, "codesync_websocket_connections_total", type="yjs") == 101


def test_metrics_token_gives_401_without_header_403_when_wrong_and_200_when_right(twin_factory):
    twin = twin_factory(env={"METRICS_TOKEN": "yjs-metrics-secret"})
    url = metrics_url(twin)
    missing = requests.get(url, timeout=5)
    assert missing.status_code == 401
    assert missing.json() == {
        "error": {"message": missing.json()["error"]["message"], "code": "AUTH_REQUIRED", "statusCode": 401}
    }
    wrong = requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=5)
    assert wrong.status_code == 403
    assert wrong.json()["error"]["code"] == "FORBIDDEN"
    assert wrong.json()["error"]["statusCode"] == 403
    samples = scrape(url, token="yjs-metrics-secret")
    assert value(samples, "codesync_yjs_documents_active") == 0
    assert ("codesync_websocket_connections_total", frozenset({("type", "yjs")})) in samples
