"""The Yjs client against the twin's Yjs port as a real process.

The same properties as against upstream (sync, convergence, exact sample and echo counts),
plus what only CodeSync does: the per-IP connection limit closing with 1008, which the client
reports as YjsRateLimited, and which binding to another 127.0.0.x source address avoids.
"""

from __future__ import annotations

import random
import uuid

import pytest

from scenarios.clients.propagation import EditRegistry
from scenarios.clients.yjs import YjsClient, YjsRateLimited


def document() -> str:
    return f"sess{uuid.uuid4().hex[:12]}:src/app.py"


def test_converge_with_exact_sample_and_echo_counts(twin) -> None:
    registry = EditRegistry()
    doc = document()
    with YjsClient(twin.yjs_url, doc, registry=registry) as a, YjsClient(twin.yjs_url, doc, registry=registry) as b:
        rng_a, rng_b = random.Random(3), random.Random(4)
        for _ in range(10):
            a.type_near_start(rng_a)
            b.type_near_start(rng_b)
        a.wait_for(lambda c: c.updates_received == 10 and c.echoes_received == 10, what="b's updates and a's echoes")
        b.wait_for(lambda c: c.updates_received == 10 and c.echoes_received == 10, what="a's updates and b's echoes")
        assert a.text() == b.text() and len(a.text()) == 20
        assert len(a.latencies) == 10 and len(b.latencies) == 10
        assert a.updates_applied == 10 and b.updates_applied == 10
    with YjsClient(twin.yjs_url, doc, registry=registry) as late:
        # CodeSync loads stored state asynchronously: it may arrive as an Update after the sync
        late.wait_for(lambda c: c.text() == a.text(), what="the stored document")
        assert late.text() == a.text()


def test_connection_limit_per_ip_closes_with_1008(twin) -> None:
    doc = document()
    for _ in range(100):  # the contract: 100 Yjs connections per 60 s per client IP
        YjsClient(twin.yjs_url, doc, registry=None, source_address="127.0.0.1").connect()
    with pytest.raises(YjsRateLimited, match="1008") as caught:
        YjsClient(twin.yjs_url, doc, registry=None, source_address="127.0.0.1").connect()
    assert caught.value.code == 1008
    # another loopback source address is another client IP with a window of its own
    with YjsClient(twin.yjs_url, doc, registry=None, source_address="127.0.0.9") as other:
        assert other.synced
