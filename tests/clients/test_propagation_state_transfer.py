"""State transfer on (re)connect is never an edit-propagation sample (issue #11's false claim).

The real shape, measured on CodeSync: the server loads a document's stored state
asynchronously, so a client re-opening the document after the run syncs against the empty
document and then receives the stored state as an ordinary Update. Counted as propagation,
every old edit in it "propagated" at that moment: reports showed p95 of 9-24 s against a relay
of 3 ms. The twin loads asynchronously too; `--yjs-load-delay-ms` makes the order certain.
"""

from __future__ import annotations

from scenarios.clients.propagation import EditRegistry
from scenarios.clients.yjs import YjsClient
from tests.twin._yjs import unique_document
from tests.twin.test_yjs_persistence import wait_documents_active


def test_a_reopen_that_gets_the_stored_state_as_an_update_yields_no_propagation_sample(twin_factory) -> None:
    twin = twin_factory(extra_args=["--yjs-load-delay-ms", "300"])
    doc = unique_document("transfer")
    registry = EditRegistry()  # one process: the registry knows the writer's every edit
    with YjsClient(twin.yjs_url, doc, registry=registry) as writer:
        for index in range(20):
            writer.insert(0, chr(ord("a") + index))
        writer.wait_for(lambda c: c.echoes_received == 20, what="the echoes of 20 edits")
        written = writer.text()
    wait_documents_active(twin, 0)  # unloaded: the next client loads the stored state

    with YjsClient(twin.yjs_url, doc, registry=registry) as reopened:
        assert reopened.text() == ""  # synced before the load landed: the real shape
        reopened.wait_for(lambda c: c.text() == written, what="the stored state")
        assert reopened.frames_received["sync_step2"] == 1
        assert reopened.updates_received == 1  # the stored state, as an ordinary Update after the sync
        assert reopened.latency_count == 0 and reopened.latencies == []

        # Control: an edit made while the reader is connected is still a sample, exactly one.
        with YjsClient(twin.yjs_url, doc, registry=registry) as live:
            live.wait_for(lambda c: c.text() == written, what="the state at the live editor")
            live.insert(0, "!")
            reopened.wait_for(lambda c: c.latency_count == 1, what="one propagation sample")
        assert len(reopened.latencies) == 1 and 0 <= reopened.latencies[0] < 5
