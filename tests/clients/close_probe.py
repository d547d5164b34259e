"""A lean connection that closes with the server's broadcasts unread, in a gevent-patched process.

    $ python tests/clients/close_probe.py YJS_URL ROUNDS  ->  one JSON line on stdout

Started by test_yjs_lean_close.py. Editor `a` types ROUNDS keystrokes without yielding, so the
hub never runs `b`'s read watcher and the twin's broadcasts of them pile up unread in `b`'s
socket; then `b`, which has a cursor, closes: its awareness goodbye and close frame go out
with that data still unread. Prints every frame each connection reported as sent.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import random  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import uuid  # noqa: E402
from collections import Counter  # noqa: E402

from scenarios.clients.yjs_lean import LeanYjsConnection  # noqa: E402

original_select = monkey.get_original("select", "select")


def main(url: str, rounds: int) -> None:
    document = f"close{uuid.uuid4().hex[:10]}:src/main.py"
    sent: dict[str, Counter[str]] = {"a": Counter(), "b": Counter()}
    conns = {}
    for name in ("a", "b"):
        conn = LeanYjsConnection(url, document, registry=None, name=name, eager=False)  # frames counted exactly
        conn.observe(lambda event, heard=sent[name]: heard.update([event.kind] if event.what == "sent" else []))
        conn.connect()
        conns[name] = conn
    a, b = conns["a"], conns["b"]
    b.set_cursor(0, 0)
    a.wait_for(lambda c: c.awareness_received >= 1, 5.0, "b's cursor at a")
    rng = random.Random(7)
    for _ in range(rounds):
        a.type_near_start(rng)  # no yield: b's socket fills with the twin's broadcasts
    # wait with the unpatched select, which never yields to the hub: b's read watcher stays idle
    readable, _, _ = original_select([b._sock], [], [], 10.0)
    unread = len(b._sock.recv(1 << 20, socket.MSG_PEEK)) if readable else 0
    b.close()
    a.close()
    print(json.dumps({"sent": {name: dict(counts) for name, counts in sent.items()}, "unread_at_close": unread}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
