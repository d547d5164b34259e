"""Drive LeanYjsConnection next to YjsClient in a gevent-patched process, as a Locust worker does.

    $ python tests/clients/lean_probe.py YJS_URL   ->  one JSON line on stdout

Started as a subprocess by test_yjs_lean.py (gevent's patching must never reach pytest).
Each scenario reports raw counts; the test decides what they must be.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections import Counter  # noqa: E402
from typing import Any  # noqa: E402

from codesync_load.ledger import Ledger  # noqa: E402
from scenarios.clients.propagation import EditRegistry  # noqa: E402
from scenarios.clients.yjs import YjsClient, YjsEvent, YjsTimeout  # noqa: E402
from scenarios.clients.yjs_lean import LeanYjsConnection  # noqa: E402
from scenarios.recording import Recorder  # noqa: E402


def doc_name() -> str:
    return f"lean{uuid.uuid4().hex[:10]}:src/main.py"


def events_of(heard: list[YjsEvent]) -> dict[str, int]:
    return {f"{e.what}:{e.kind}": n for e, n in Counter(YjsEvent(e.what, e.kind) for e in heard).items()}


def samples_and_echoes(url: str) -> dict[str, Any]:
    """a sends 7 inserts and a pure deletion; b samples each insert once, a counts echoes."""
    registry = EditRegistry()
    heard_a: list[YjsEvent] = []
    heard_b: list[YjsEvent] = []
    doc = doc_name()
    a = LeanYjsConnection(url, doc, registry=registry, observers=(heard_a.append,), source_address="127.0.8.1")
    b = LeanYjsConnection(url, doc, registry=registry, keep_samples=100, source_address="127.0.8.1")
    b.observe(heard_b.append)
    a.connect()
    b.connect()
    starts = [a.insert(0, str(i)) for i in range(7)]
    deletion = a.delete(0, 1)
    b.wait_for(lambda c: c.updates_received == 8, what="a's 8 updates at b")
    a.wait_for(lambda c: c.echoes_received == 8, what="8 echoes at a")
    out = {
        "starts": starts,
        "deletion": deletion,
        "texts": [a.text(), b.text()],
        "a": [a.updates_sent, a.updates_received, a.updates_applied, a.echoes_received, a.latency_count],
        "b": [b.updates_sent, b.updates_received, b.updates_applied, b.echoes_received, b.latency_count],
        "b_kept": len(b.latencies),
        "b_samples_in_range": all(0 < s < 5 for s in b.latencies),
        "b_observed_latencies_equal_kept": [e.value for e in heard_b if e.what == "latency"] == b.latencies,
        "events_a": events_of(heard_a),
        "events_b": events_of(heard_b),
    }
    started = time.monotonic()
    try:
        b.wait_for(lambda c: c.updates_received == 9, timeout=0.3, what="a ninth update")
        out["timeout"] = None
    except YjsTimeout as err:
        out["timeout"] = [str(err), round(time.monotonic() - started, 1)]
    a.close()
    b.close()
    return out


def awareness(url: str) -> dict[str, Any]:
    doc = doc_name()
    # Patient clients (no awareness on open): this probe counts the awareness frames exactly.
    a = LeanYjsConnection(url, doc, name="ada", file="src/main.py", source_address="127.0.8.2", eager=False)
    b = LeanYjsConnection(url, doc, keep_awareness=True, source_address="127.0.8.2", eager=False)
    counting = LeanYjsConnection(url, doc, source_address="127.0.8.2", eager=False)  # counts, keeps nothing
    for conn in (a, b, counting):
        conn.connect()
    before = counting.awareness_received
    a.set_cursor(3, 14)
    b.wait_for(lambda c: a.client_id in c.awareness_states, what="a's awareness at b")
    counting.wait_for(lambda c: c.awareness_received == before + 1, what="a's awareness at the counter")
    state = b.awareness_states[a.client_id]
    a.close()
    b.wait_for(lambda c: a.client_id not in c.awareness_states, what="a's awareness removal at b")
    counting.wait_for(lambda c: c.awareness_received == before + 2, what="the removal at the counter")
    out = {
        "state": state,
        "a_sent": a.awareness_sent,
        "counting_states": counting.awareness_states,
        "counting_received": counting.awareness_received - before,
    }
    b.close()
    counting.close()
    return out


def announced(url: str) -> dict[str, Any]:
    """Separate registries stand for separate processes: b pairs a's awareness announcements."""
    doc = doc_name()
    # Patient clients (no awareness on open): b's awareness frames are a's five announcements.
    a = LeanYjsConnection(
        url, doc, registry=EditRegistry(), announce_edits=True, source_address="127.0.8.3", eager=False
    )
    b = LeanYjsConnection(url, doc, registry=EditRegistry(), keep_samples=10, source_address="127.0.8.3", eager=False)
    a.connect()
    b.connect()
    for i in range(5):
        a.insert(0, str(i))
    b.wait_for(lambda c: c.latency_count == 5 and c.awareness_received == 5, what="5 announced samples at b")
    out = {"samples": b.latency_count, "in_range": all(0 <= s < 5 for s in b.latencies), "a_aw": a.awareness_sent}
    a.close()
    b.close()
    return out


def ledger_of(url: str, factory: Any, address: str) -> dict[str, int]:
    """One scripted session (two editors, a viewer), recorded by scenarios.recording."""
    ledger = Ledger()
    recorder = Recorder(ledger)
    registry = EditRegistry()
    doc = doc_name()
    # patient clients: the awareness frames counted below are the script's own
    conns = [factory(url, doc, registry=registry, source_address=address, eager=False) for _ in range(3)]
    for conn in conns:
        conn.observe(recorder.yjs_event)
        conn.connect()
    rngs = [random.Random(1), random.Random(2)]
    for _ in range(6):
        for conn, rng in zip(conns[:2], rngs, strict=True):
            conn.type_near_start(rng)
    conns[0].delete(0, 1)
    conns[1].set_cursor(2, 5)
    conns[0].wait_for(lambda c: c.updates_received == 6 and c.echoes_received == 7, what="editor 0 settled")
    conns[1].wait_for(lambda c: c.updates_received == 7 and c.echoes_received == 6, what="editor 1 settled")
    conns[2].wait_for(lambda c: c.updates_received == 13, what="viewer settled")
    conns[2].wait_for(lambda c: c.text() == conns[0].text() == conns[1].text(), what="converged")

    def heard_awareness(n: int) -> Any:
        return lambda _c: ledger.get("message", "yjs", "awareness", "received") >= n

    conns[2].wait_for(heard_awareness(3), what="the cursor at all three")  # the sender hears it too
    heard_before_close = ledger.get("message", "yjs", "awareness", "received")
    conns[1].close()  # "gone" reaches the two others
    conns[2].wait_for(heard_awareness(5), what="the removal at the two others")
    conns[0].close()
    conns[2].close()
    counts = {"|".join(map(str, key)): n for key, n in ledger.entries("message")}
    # Received frames are the client's view, never compared with the server's counters: a
    # YjsClient reads on until the close handshake ends, so it may also hear its own "gone".
    counts["awareness_received_final"] = counts.pop("yjs|awareness|received")
    counts["awareness_received_before_close"] = heard_before_close
    counts.update({"yjs_update|" + "|".join(map(str, key)): n for key, n in ledger.entries("yjs_update")})
    counts["samples"] = len(ledger.samples("yjs_propagation_s"))
    return counts


def main(url: str) -> None:
    out = {
        "samples_and_echoes": samples_and_echoes(url),
        "awareness": awareness(url),
        "announced": announced(url),
        "ledger_lean": ledger_of(url, LeanYjsConnection, "127.0.8.4"),
        "ledger_yjsclient": ledger_of(url, YjsClient, "127.0.8.5"),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
