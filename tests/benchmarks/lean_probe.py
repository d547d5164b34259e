"""Drive LeanYjsConnection in a gevent-patched process, as a Locust worker would.

    $ python tests/benchmarks/lean_probe.py YJS_URL   ->  one JSON line on stdout

Started as a subprocess by test_yjs_lean_live.py (gevent's patching must never reach pytest).
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402

import gevent  # noqa: E402

from scenarios.clients.yjs import YjsConnectError, YjsRateLimited  # noqa: E402
from scenarios.clients.yjs_lean import LeanYjsConnection  # noqa: E402


def wait_for(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        gevent.sleep(0.01)
    return True


def main(url: str) -> None:
    out: dict = {}
    doc = f"lean{uuid.uuid4().hex[:8]}:src/main.py"
    editors = [LeanYjsConnection(url, doc, source_address="127.0.9.1") for _ in range(3)]
    for editor in editors:
        editor.connect()
    rng = random.Random(7)
    for i in range(30):
        editors[i % 3].type_near_start(rng)
    # once everyone has everything, an insert at 0 has no concurrent rival: it must lead the text
    out["converged_before_head"] = wait_for(lambda: len({e.text() for e in editors}) == 1)
    editors[0].insert(0, "HEAD")
    converged = wait_for(
        lambda: len({e.text() for e in editors}) == 1 and all(e.echoes_received == e.updates_sent for e in editors)
    )
    out["converged"] = converged
    out["text_length"] = len(editors[0].text())
    out["counts"] = [(e.updates_sent, e.updates_applied, e.echoes_received) for e in editors]
    out["starts_with_head"] = editors[1].text().startswith("HEAD")
    late = LeanYjsConnection(url, doc, source_address="127.0.9.1")
    late.connect()  # a late joiner receives the whole text in SyncStep2
    out["late_text_matches"] = late.text() == editors[0].text()
    for conn in [*editors, late]:
        conn.close()

    # The twin admits 100 Yjs connections per window per IP; the 101st is closed with 1008.
    held = []
    for i in range(100):
        conn = LeanYjsConnection(url, f"{doc}-{i}", source_address="127.0.9.2")
        conn.connect()
        held.append(conn)
    try:
        LeanYjsConnection(url, f"{doc}-over", source_address="127.0.9.2").connect()
        out["limited"] = None
    except YjsRateLimited as err:
        out["limited"] = [err.code, str(err)]
    out["held_open"] = sum(1 for c in held if c.open)
    for conn in held:
        conn.close()
    try:
        LeanYjsConnection("ws://127.0.0.1:1", doc).connect()
        out["refused"] = None
    except YjsConnectError as err:
        out["refused"] = str(err)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
