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
"""

from __future__ import annotations

from typing import Any

from codesync_load.ledger import Ledger

# Which limiter answered a 429, by route template (the contract's files/search key).
_LIMITER_BY_ROUTE = {
    "/api/sessions/:id/files": "files",
    "/api/sessions/:id/files/:path/content": "files",
    "/api/sessions/:id/search": "search",
}

_SIO_DIRECTION = {"outbound": "sent", "inbound": "received"}


def limiter_for_route(route: str) -> str:
    """The contract's limiter behind a route (files or search); "other" for the rest."""
    return _LIMITER_BY_ROUTE.get(route, "other")


class Recorder:
    """Writes client observations into one ledger with the ledger's label conventions."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    # -- REST ----------------------------------------------------------------------------
    def http(self, result: Any) -> None:
        """Observer for RestClient: one request by (method, route template, status).

        Each response's elapsed time is kept raw as sample `http_s` (the client's view of
        the server's duration histogram).

        A transport failure (no response) is counted with status 0 and as a failure, so the
        ledger's HTTP total equals the requests attempted; only responses reach the server's
        counter, and the verifier subtracts status 0.
        """
        self.ledger.count("http", result.method, result.route, int(result.status))
        if result.status:
            self.ledger.sample("http_s", result.elapsed)
        code = result.error_code
        if result.status == 0:
            self.ledger.count("failure", "http", f"{result.method} {result.route}", "TRANSPORT")
        elif code:
            self.ledger.count("error", "http", code)
        if result.status == 429:
            self.ledger.count("rate_limited", limiter_for_route(result.route))

    # -- Socket.IO -----------------------------------------------------------------------
    def socketio_event(self, event: Any) -> None:
        """Observer for SocketIOClient: one message by event name and direction."""
        direction = _SIO_DIRECTION.get(event.direction, event.direction)
        self.ledger.count("message", "socketio", event.name, direction)
        if event.name == "error" and direction == "received":
            self.ledger.count("error", "socketio", "error_event")

    # -- connections ---------------------------------------------------------------------
    def connection(self, channel: str, event: str, code: str | None = None) -> None:
        """A WebSocket connection `opened`, `refused` (with the reason code) or `closed`."""
        self.ledger.count("connection", channel, event)
        if event == "refused":
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
        self.ledger.count("session", event)

    def participant(self, session_id: str, event: str) -> None:
        """A participant `joined` or `left` a session's room."""
        self.ledger.count("participant", session_id, event)

    # -- Yjs -----------------------------------------------------------------------------
    def yjs_event(self, event: Any) -> None:
        """Observer for YjsClient and LeanYjsConnection: frames by kind and direction, updates, latencies.

        The server rebroadcasts our own updates to us: those are counted as `echo`, apart
        from the others' updates (`received`, each also `applied` to our document).
        """
        if event.what == "latency":
            if event.value is not None:
                self.ledger.sample("yjs_propagation_s", event.value)
            return
        direction = "sent" if event.what == "sent" else "received"
        self.ledger.count("message", "yjs", event.kind, direction)
        if event.kind == "update":
            if direction == "sent":
                self.ledger.count("yjs_update", "sent")
            else:
                self.ledger.count("yjs_update", "received")
                self.ledger.count("yjs_update", "applied")
        elif event.kind == "echo":
            self.ledger.count("yjs_update", "echo")

    def latency(self, name: str, seconds: float) -> None:
        self.ledger.sample(name, seconds)
