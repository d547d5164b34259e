"""N editors edit one fresh document, converge and leave; a newcomer reads what was stored.

    >>> run = edit_and_reload(target, editors=3, edits=10)
    >>> run.converged, run.reloaded == run.final, len(run.final)
    (True, True, 90)

"No edit lost" has two halves: every editor ends with the same text holding every edit
(convergence, through the server's broadcast), and once the last editor has left, the
document the server stored is that text (persistence: the y-websocket server writes the
full state and unloads the document; the next client loads it from storage). The document
is `<sessionId>:<path>` of a session created for the run, as CodeSync's persistence keys it.

Between the last leave and the reload the server must have unloaded the document, or the
newcomer joins the copy still in memory and proves nothing about storage: the run waits
(bounded) for the Yjs process's codesync_yjs_documents_active to drop below its value
while the editors were connected.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from codesync_load.errors import HarnessError
from scenarios.clients.yjs import YjsClient, YjsError
from verify.live.actors import fresh_loopback, fresh_session, fresh_user
from verify.live.inputs import LiveTarget
from verify.live.scrape import read_metrics, sample

DOCS_GAUGE = "codesync_yjs_documents_active"


@dataclass
class EditRun:
    document: str
    expected_chars: int
    converged: bool = False
    texts: list[str] = field(default_factory=list)  # each editor's text when the wait ended
    final: str = ""
    reloaded: str | None = None
    unload_seen: bool | None = None  # None: the gauge could not be read
    problem: str = ""


def _gauge(target: LiveTarget) -> float | None:
    try:
        return sample(read_metrics(target.yjs_http_url, target.metrics_token), DOCS_GAUGE)
    except HarnessError:
        return None


def _poll(probe: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return True
        time.sleep(0.05)
    return bool(probe())


def edit_and_reload(target: LiveTarget, editors: int = 3, edits: int = 10, timeout: float = 15.0) -> EditRun:
    """See the module docstring. Every client is closed on return, pass or fail."""
    owner = fresh_user(target.api_url, "edits")
    try:
        session_id = fresh_session(owner)
    finally:
        owner.close()
    document = f"{session_id}:verify/edits-{uuid.uuid4().hex[:8]}.txt"
    address = fresh_loopback()  # editors + newcomer: far below the 100/IP limit, and not 127.0.0.1's budget
    tokens = [f"<{e}.{i}>" for e in range(editors) for i in range(edits)]
    run = EditRun(document, sum(len(t) for t in tokens))
    clients = [
        YjsClient(target.yjs_url, document, name=f"verify-{e}", registry=None, source_address=address)
        for e in range(editors)
    ]
    try:
        for client in clients:
            client.connect()
        loaded = _gauge(target)
        for i in range(edits):
            for e, client in enumerate(clients):
                client.insert(0, f"<{e}.{i}>")

        def converged() -> bool:
            texts = [c.text() for c in clients]
            return len(set(texts)) == 1 and len(texts[0]) == run.expected_chars

        run.converged = _poll(converged, timeout)
        run.texts = [c.text() for c in clients]
        for client in clients:
            client.raise_if_failed()
    except YjsError as err:
        run.problem = f"an editor failed: {err}"
        return run
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                client.close()
    run.final = run.texts[0] if run.converged else ""
    if not run.converged:
        return run
    if loaded is not None:
        run.unload_seen = _poll(lambda: (_gauge(target) or 0) < loaded, timeout)
    newcomer = YjsClient(target.yjs_url, document, name="verify-reader", registry=None, source_address=address)
    try:
        newcomer.connect()
        run.reloaded = newcomer.stored_text(run.final)  # the stored state may come after the sync
    except YjsError as err:
        run.problem = f"the newcomer could not load the document: {err}"
    finally:
        newcomer.close()
    return run
