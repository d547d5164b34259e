"""The twin's Yjs port speaks y-websocket v1 as CodeSync's server does (contract, "Yjs").

Each test starts a real twin process and talks to it with real WebSockets and pycrdt docs.
"""

from __future__ import annotations

import pytest
import requests
from pycrdt import YMessageType, YSyncMessageType, create_update_message
from websockets.exceptions import ConnectionClosed

from tests.twin._yjs import YjsTestClient, open_socket, unique_document


def http_url(twin) -> str:
    return twin.yjs_url.replace("ws://", "http://", 1)


def test_server_sends_sync_step1_first_and_answers_sync_step1_with_step2(twin):
    doc = unique_document()
    with YjsTestClient(twin.yjs_url, doc) as writer:
        writer.sync()
        writer.insert(0, "def main():\n    pass\n")
        writer.wait_for(lambda: writer.echoes == 1, what="echo")
    with open_socket(twin.yjs_url, doc) as raw:
        first = raw.recv(timeout=5)
        assert first[:2] == bytes([YMessageType.SYNC, YSyncMessageType.SYNC_STEP1])
        # A fresh pycrdt doc asks for everything; the answer is a SyncStep2 carrying the text.
        with YjsTestClient(twin.yjs_url, doc) as reader:
            assert reader.receive() == "step1"
            reader.send_sync_step1()
            reader.wait_for(lambda: reader.synced, what="SyncStep2")
            assert reader.kinds[-1] == "step2"
            assert reader.content == "def main():\n    pass\n"


def test_two_clients_converge_after_concurrent_edits_and_each_gets_its_own_echo(twin):
    doc = unique_document()
    with YjsTestClient(twin.yjs_url, doc) as alice, YjsTestClient(twin.yjs_url, doc) as bob:
        alice.sync()
        bob.sync()
        # Both edit before either sees the other's edit: a real conflict for the CRDT.
        for i in range(5):
            alice.insert(0, f"a{i};")
            bob.insert(0, f"b{i};")
        for client in (alice, bob):
            client.wait_for(lambda c=client: len(c.updates_received) == 10, what="all 10 updates")
        assert alice.content == bob.content
        assert len(alice.content) == 30
        expected = [f"a{i}" for i in range(5)] + [f"b{i}" for i in range(5)]
        assert sorted(alice.content.split(";")[:-1]) == sorted(expected)
        # Every update goes to all connections, the sender included.
        assert alice.echoes == 5
        assert bob.echoes == 5


def test_awareness_is_relayed_to_all_and_removed_when_its_client_disconnects(twin):
    doc = unique_document()
    cursor = {"user": {"name": "Ada", "color": "#f00", "file": "main.py"}, "cursor": {"line": 3, "column": 7}}
    with YjsTestClient(twin.yjs_url, doc) as watcher:
        watcher.sync()
        with YjsTestClient(twin.yjs_url, doc) as ada:
            ada.sync()
            ada.set_awareness(4242, 1, cursor)
            watcher.wait_for(lambda: watcher.awareness.get(4242) == cursor, what="Ada's cursor")
            ada.wait_for(lambda: ada.awareness.get(4242) == cursor, what="own awareness relayed back")
            # A client joining later is sent the current states right after SyncStep1.
            with YjsTestClient(twin.yjs_url, doc) as late:
                late.wait_for(lambda: late.awareness.get(4242) == cursor, what="awareness on connect")
                assert late.kinds[:2] == ["step1", "awareness"]
        # Ada's socket closed: the server tells the others her state is gone.
        watcher.wait_for(lambda: 4242 not in watcher.awareness, what="Ada's removal")


def test_stale_awareness_clock_is_not_relayed(twin):
    doc = unique_document()
    with YjsTestClient(twin.yjs_url, doc) as a, YjsTestClient(twin.yjs_url, doc) as b:
        a.sync()
        b.sync()
        a.set_awareness(7, 5, {"v": "new"})
        b.wait_for(lambda: b.awareness.get(7) == {"v": "new"}, what="clock 5")
        frames_before = b.awareness_frames
        a.set_awareness(7, 4, {"v": "old"})  # lower clock: upstream ignores it
        a.set_awareness(7, 6, {"v": "newer"})
        b.wait_for(lambda: b.awareness.get(7) == {"v": "newer"}, what="clock 6")
        assert b.awareness_frames == frames_before + 1


def test_garbage_frames_close_only_that_socket_and_keep_the_room(twin):
    doc = unique_document()
    garbage: list[tuple[bytes | str, int]] = [
        ("hello", 1003),  # text frame
        (b"\x00\x02\xff", 1002),  # update whose length varint is truncated
        (b"\x00\x02\x05ab", 1002),  # update announcing 5 bytes, carrying 2
        (b"\x07\x00", 1002),  # unknown message type
        (b"\x00\x09\x00", 1002),  # unknown sync subtype
        (create_update_message(b"not a yjs update at all"), 1002),  # pycrdt rejects it
        (bytes([YMessageType.SYNC, YSyncMessageType.SYNC_STEP1, 2, 5, 1]), 1002),  # state vector cut short
        (b"\x01\x05\x01\x01\x01\x01{", 1002),  # awareness state that is not JSON
        (b"\x00\x02" + b"\xff" * 12, 1002),  # varint longer than lib0 allows
    ]
    with YjsTestClient(twin.yjs_url, doc) as keeper:
        keeper.sync()
        keeper.insert(0, "kept")
        keeper.wait_for(lambda: keeper.echoes == 1, what="echo")
        for frame, code in garbage:
            with YjsTestClient(twin.yjs_url, doc) as bad:
                bad.wait_for(lambda b=bad: "step1" in b.kinds, what="SyncStep1")
                bad.send(frame)
                assert bad.closed_with() == code, frame
        # The good client is still connected, still receives, and the document is intact.
        keeper.insert(4, "!")
        keeper.wait_for(lambda: keeper.echoes == 2, what="echo after the garbage")
        assert keeper.content == "kept!"
    with YjsTestClient(twin.yjs_url, doc) as after:
        after.sync()
        # The room was unloaded when the keeper left; the stored state is loaded asynchronously,
        # as CodeSync's server does, and may arrive as an Update after the sync.
        after.wait_for(lambda: after.content == "kept!", what="the stored document 'kept!'")


def test_frame_over_the_size_limit_is_refused_and_the_server_carries_on(twin):
    doc = unique_document()
    with YjsTestClient(twin.yjs_url, doc) as keeper:
        keeper.sync()
        with YjsTestClient(twin.yjs_url, doc) as big:
            big.wait_for(lambda: "step1" in big.kinds, what="SyncStep1")
            # The server judges the frame by its header: it closes (1009) while the body is still
            # being sent, so the client sees the close frame or, if the reset wins, a reset.
            try:
                big.send(b"\x00\x02" + b"\x00" * (16 * 1024 * 1024 + 16))
                code = big.closed_with(timeout=20)
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else None
            assert code in (1009, None)
            with pytest.raises(ConnectionClosed):
                big.ws.send(b"\x00\x02\x02\x00\x00")
                big.receive(timeout=2)
        keeper.insert(0, "still here")
        keeper.wait_for(lambda: keeper.echoes == 1, what="echo")


def test_plain_http_get_of_a_document_path_is_answered_with_426(twin):
    response = requests.get(http_url(twin) + "/some-session:main.py", timeout=5)
    assert response.status_code == 426
    assert "WebSocket" in response.text
    assert response.headers["Upgrade"] == "websocket"


def test_document_name_is_the_url_decoded_path(twin):
    session = unique_document().split(":")[0]
    # A JS client sends the name raw; a careful Python client percent-encodes it: same document.
    with YjsTestClient(twin.yjs_url, f"{session}%3Asrc/a%20b.py") as encoded:
        encoded.sync()
        encoded.insert(0, "same doc")
        encoded.wait_for(lambda: encoded.echoes == 1, what="echo")
        with YjsTestClient(twin.yjs_url, f"{session}:src/a b.py".replace(" ", "%20")) as plain:
            plain.sync()
            assert plain.content == "same doc"
        with YjsTestClient(twin.yjs_url, f"{session}:src/ab.py") as other:
            other.sync()
            assert other.content == ""
