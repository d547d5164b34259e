"""Translate what the protocol clients report into ledger entries, in one place.

    >>> recorder = Recorder(ledger)
    >>> api = RestClient(url, observers=(recorder.http,))       # every REST result counted
    >>> sio = SocketIOClient(url, token, observers=(recorder.socketio_event,))
    >>> recorder.connection("socketio", "opened")
    >>> yjs = LeanYjsConnection(yjs_url, doc, observers=(recorder.yjs_event,))  # or YjsClient: same events

Why a separate module: the clients know CodeSync's protocols and nothing about ledgers, and
the Locust users know scheduling and nothing about label conventions. This module is the one
place that decides how a client's result becomes (kind, labels) in the ledger, so the
verifier can rely on one vocabulary (see codesync_load.ledger for the schema).

Yjs frames are the hot path of a load process (every frame of every connection, and a latency
sample per applied update): their few ledger keys are checked once, when the recorder is made,
and each frame costs one dictionary look-up and one `Ledger.tally` call (one lock) however many
counters it moves.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from codesync_load.errors import is_server_error
from codesync_load.ledger import Ledger
from scenarios.clients.rest import FILE_CONTENT

# Which limiter answered a 429, by route template (the contract's files/search key).
_LIMITER_BY_ROUTE = {
    "/api/sessions/:id/files": "files",
    "/api/sessions/:id/files/:path/content": "files",
    "/api/sessions/:id/search": "search",
}

_SIO_DIRECTION = {"outbound": "sent", "inbound": "received"}

# The y-websocket frame kinds a Yjs client reports (YjsEvent.kind), plus "echo": our own update
# as the server sent it back.
_YJS_FRAME_KINDS = ("sync_step1", "sync_step2", "update", "awareness", "echo")
PROPAGATION_SAMPLE = "yjs_propagation_s"

# Routes whose successful answers are also kept as a sample series of their own: a regression
# on one route hides in the all-routes `http_s` (the gate's baseline comparison reads these).
ROUTE_SAMPLES = {("PUT", FILE_CONTENT): "autosave_put_s"}


def limiter_for_route(route: str) -> str:
    """The contract's limiter behind a route (files or search); "other" for the rest."""
    return _LIMITER_BY_ROUTE.get(route, "other")


class Recorder:
    """Writes client observations into one ledger with the ledger's label conventions."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        # (what, kind, None) -> the counters one Yjs frame moves; a YjsEvent of a frame is
        # exactly that tuple, so the event itself is the look-up key.
        self._yjs_frames: dict[tuple[str, str, None], Callable[[], None]] = {}
        for kind in _YJS_FRAME_KINDS:
            for what in ("sent", "received"):
                self._yjs_frames[(what, kind, None)] = ledger.tally(*_yjs_keys(what, kind))

    # -- REST ----------------------------------------------------------------------------
    def http(self, result: Any) -> None:
        """Observer for RestClient: one request by (method, route template, status).

        Each response's elapsed time is kept raw as sample `http_s` (the client's view of
        the server's duration histogram); a 2xx of a route in ROUTE_SAMPLES also in its own
        series (`autosave_put_s`).

        A transport failure (no response) is counted with status 0 and as a failure, so the
        ledger's HTTP total equals the requests attempted; only responses reach the server's
        counter, and the verifier subtracts status 0. Each request but GET /health is also
        counted in its epoch second as `served` ok or failed (5xx or no answer): when users could
        use the service.
        """
        self.ledger.count("http", result.method, result.route, int(result.status))
        if result.route != "/health":  # the users' own health calls (for cookies) are not use of the service
            failed = not result.status or is_server_error(int(result.status))
            self.ledger.count("served", int(time.time()), "failed" if failed else "ok")
        if result.status:
            self.ledger.sample("http_s", result.elapsed)
            route_series = ROUTE_SAMPLES.get((result.method, result.route))
            if route_series and 200 <= int(result.status) < 300:
                self.ledger.sample(route_series, result.elapsed)
        code = result.error_code
        if result.status == 0:
            self.ledger.count("failure", "http", f"{result.method} {result.route}", "TRANSPORT")
        elif code:
            self.ledger.count("error", "http", code)
        if result.status == 429:
            self.ledger.count("rate_limited", limiter_for_route(result.route))

    def unexpected_http(self, result: Any) -> None:
        """An HTTP answer the load model did not intend (a failure of the run), by route and status.

        Counted apart from `http` so the console can say "403 FORBIDDEN x 262 on PUT <route>".
        """
        code = result.error_code or ("TRANSPORT" if not result.status else f"HTTP_{result.status}")
        self.ledger.count("unexpected", result.method, result.route, int(result.status), code)

    # -- Socket.IO -----------------------------------------------------------------------
    def socketio_event(self, event: Any) -> None:
        """Observer for SocketIOClient: one message by event name and direction."""
        direction = _SIO_DIRECTION.get(event.direction, event.direction)
        self.ledger.count("message", "socketio", event.name, direction)
        if event.name == "error" and direction == "received":
            self.ledger.count("error", "socketio", "error_event")

    # -- connections ---------------------------------------------------------------------
    def connection(self, channel: str, event: str, code: str | None = None, document: str | None = None) -> None:
        """A WebSocket connection `opened`, `refused` (with the reason code) or `closed`.

        Opens and closes are stamped (gauges move with them), and a Yjs connection's
        `document` also moves that document's own count (the server's loaded-documents gauge).
        """
        if event != "refused":
            self.ledger.event("connection", channel, event)
            if document is not None:
                self.ledger.event("yjs_document", document, event)
            return
        self.ledger.count("connection", channel, event)
        self.ledger.count("error", channel, code or "REFUSED")
        if code == "RATE_LIMIT":
            self.ledger.count("rate_limited", channel)

    def failure(self, channel: str, operation: str, error: BaseException | str) -> None:
        """A client-side failure (timeout, protocol error) by its type name."""
        name = error if isinstance(error, str) else type(error).__name__
        self.ledger.count("failure", channel, operation, name)

    # -- sessions ------------------------------------------------------------------------
    def session(self, event: str) -> None:
        """A CodeSync session `created` or `deleted` by this run."""
        self.ledger.event("session", event)

    def participant(self, session_id: str, event: str) -> None:
        """A participant `joined` or `left` a session's room."""
        self.ledger.event("participant", session_id, event)

    # -- Yjs -----------------------------------------------------------------------------
    def yjs_event(self, event: Any) -> None:
        """Observer for YjsClient and LeanYjsConnection: frames by kind and direction, updates, latencies.

        The server rebroadcasts our own updates to us: those are counted as `echo`, apart
        from the others' updates (`received`, each also `applied` to our document).
        """
        add = self._yjs_frames.get(event)
        if add is not None:
            add()
            return
        what, kind, value = event
        if what == "latency":
            if value is not None:
                self.ledger.sample(PROPAGATION_SAMPLE, value)
            return
        # a frame kind this recorder was not built for: counted all the same, checked each time
        direction = "sent" if what == "sent" else "received"
        for key in _yjs_keys(direction, kind):
            self.ledger.count(*key)

    # The batch form of `yjs_event` that LeanYjsConnection uses (see its `_Sinks`): the same
    # counts and samples without one YjsEvent and one call per frame and per sample.
    def yjs_frame_hook(self, what: str, kind: str) -> Callable[[], None]:
        """What one frame `what` ("sent"/"received") of `kind` moves in the ledger, as a call."""
        add = self._yjs_frames.get((what, kind, None))
        if add is None:  # a kind this recorder was not built for: counted, checked each time
            event = (what, kind, None)
            return lambda: self.yjs_event(event)
        return add

    def yjs_latencies(self, samples: list[float]) -> None:
        """The propagation latencies of one read, kept raw in one ledger call."""
        self.ledger.sample_many(PROPAGATION_SAMPLE, samples)

    def latency(self, name: str, seconds: float) -> None:
        self.ledger.sample(name, seconds)


def _yjs_keys(direction: str, kind: str) -> list[tuple[str, ...]]:
    """The ledger keys one Yjs frame moves, `direction` sent or received (the vocabulary)."""
    keys = [("message", "yjs", kind, direction)]
    if kind == "update":
        if direction == "sent":
            keys.append(("yjs_update", "sent"))
        else:
            keys += [("yjs_update", "received"), ("yjs_update", "applied")]
    elif kind == "echo":
        keys.append(("yjs_update", "echo"))
    return keys
