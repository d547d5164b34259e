"""Yjs documents survive their room being unloaded and the twin being restarted, in SQLite and
PostgreSQL mode, and the yjs-drop-persist fault loses them while the counter still moves.

The twin coalesces writes (at most one per room every 0.5 s), so these tests deliberately
leave or stop right after editing: the flush on unload and on shutdown must cover that gap.

The stored state is loaded asynchronously, as CodeSync does: a reader may sync against the
empty document and receive the stored text afterwards as an Update, so `read_back` waits
(bounded) for the text it expects instead of reading right after the sync.
"""

from __future__ import annotations

import contextlib
import time

import pytest
from websockets.exceptions import ConnectionClosed

from tests.twin._http import delta, scrape
from tests.twin._yjs import YjsTestClient, unique_document


def metrics_url(twin) -> str:
    return twin.yjs_url.replace("ws://", "http://", 1) + "/metrics"


def write_and_leave(twin, doc: str, chunks: list[str]) -> str:
    """Insert `chunks` one by one and close at once, without waiting for any echo."""
    with YjsTestClient(twin.yjs_url, doc) as writer:
        writer.sync()
        for chunk in chunks:
            writer.insert(len(writer.content), chunk)
        return writer.content


def read_back(twin, doc: str, expected: str, timeout: float = 5.0) -> str:
    """The document's text once it equals `expected`, or as it is after `timeout` s.

    An `expected` empty text is only believed after a second (no stored state arrived).
    """
    with YjsTestClient(twin.yjs_url, doc) as reader:
        reader.sync()
        wait = timeout if expected else 1.0
        with contextlib.suppress(AssertionError):
            reader.wait_for(lambda: reader.content == expected and bool(expected), timeout=wait, what="stored text")
        return reader.content


def wait_documents_active(twin, expected: float, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(metrics_url(twin))
        if samples.get(("codesync_yjs_documents_active", frozenset()), None) == expected:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"codesync_yjs_documents_active never reached {expected}")
        time.sleep(0.05)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_text_survives_room_reopen_and_twin_restart(twin_factory, request, backend):
    env = {"DATABASE_URL": request.getfixturevalue("pg_url")} if backend == "postgresql" else {}
    doc = unique_document(backend)
    first = twin_factory(name="persist", env=env)
    written = write_and_leave(first, doc, ["import os\n", "print(os.getcwd())\n"])
    assert written == "import os\nprint(os.getcwd())\n"
    # All clients left: the room was flushed and unloaded, the next client loads it from storage.
    wait_documents_active(first, 0)
    assert read_back(first, doc, written) == written
    assert first.stop() == 0
    # Same database (same SQLite file, same PostgreSQL database), new process.
    second = twin_factory(name="persist", env=env)
    assert read_back(second, doc, written) == written


def test_no_edit_is_lost_when_the_last_client_leaves_right_after_editing(twin):
    for round_ in range(5):
        doc = unique_document(f"quick{round_}")
        chunks = [f"line {i}\n" for i in range(20)]
        written = write_and_leave(twin, doc, chunks)
        # No wait at all: a reconnect while the room is being unloaded must see every edit.
        assert read_back(twin, doc, written) == written == "".join(chunks)


def test_sigterm_with_open_sockets_stops_within_5s_closes_1001_and_flushes(twin_factory):
    doc = unique_document("sigterm")
    first = twin_factory(name="term")
    clients = [YjsTestClient(first.yjs_url, doc) for _ in range(3)]
    try:
        for client in clients:
            client.sync()
        clients[0].insert(0, "saved at shutdown")
        for client in clients:
            client.wait_for(lambda c=client: len(c.updates_received) == 1, what="the update")
        started = time.monotonic()
        assert first.stop(grace=10) == 0
        assert time.monotonic() - started < 5.0
        for client in clients:
            with pytest.raises(ConnectionClosed) as closed:
                client.receive(timeout=2)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    finally:
        for client in clients:
            client.close()
    second = twin_factory(name="term")
    assert read_back(second, doc, "saved at shutdown") == "saved at shutdown"


def test_fault_yjs_drop_persist_loses_the_text_but_counts_the_updates(twin_factory):
    twin = twin_factory(faults=["yjs-drop-persist"])
    doc = unique_document("dropped")
    before = scrape(metrics_url(twin))
    written = write_and_leave(twin, doc, ["a", "b", "c"])
    assert written == "abc"
    wait_documents_active(twin, 0)
    assert read_back(twin, doc, "") == ""
    after = scrape(metrics_url(twin))
    assert delta(before, after, "codesync_yjs_operations_total", operation_type="update") == 3


def test_a_client_that_syncs_before_the_load_gets_the_stored_state_as_an_update(twin_factory):
    # CodeSync loads a document's stored state asynchronously; the delay makes the race certain.
    twin = twin_factory(extra_args=["--yjs-load-delay-ms", "300"])
    doc = unique_document("asyncload")
    written = write_and_leave(twin, doc, ["stored ", "text"])
    wait_documents_active(twin, 0)
    with YjsTestClient(twin.yjs_url, doc) as reader:
        reader.sync()
        assert reader.content == ""  # synced against the empty document: the load has not landed
        reader.wait_for(lambda: reader.content == written, what="the stored state")
        assert reader.kinds[-1] == "update" and "step2" in reader.kinds[: reader.kinds.index("update")]
        assert reader.echoes == 0 and len(reader.updates_received) == 1
    # Loading is not an edit: no persisted-update count, and the document stays as stored.
    assert read_back(twin, doc, written) == written
