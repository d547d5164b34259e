"""The CodeSync Socket.IO client: connect with a JWT, join rooms, chat with measured round trips.

    >>> sio = SocketIOClient("http://127.0.0.1:4000", token=api.token)
    >>> sio.connect(join=session_id)         # session:join emitted on `connect`, as the browser does
    >>> sio.join_sent_after                  # seconds from the server's connect to that emit
    >>> trip = sio.chat(session_id, "hello") # waits for our own chat:message:new echo
    >>> trip.rtt, trip.message["id"]
    >>> sio.received["chat:message:new"], sio.sent["session:join"], sio.errors

Built on python-socketio's synchronous `Client` with the websocket transport only (no
long-polling upgrade dance), which runs under gevent when Locust has patched the process.

Eager by default, like socket.io-client in CodeSync's browser: `connect(join=...)` emits
`session:join` from the `connect` handler itself, with no pause. A server that registers its
handlers only after an awaited check loses such a join: that is a defect to report (the
check socketio-early-events-handled), not one to hide, so a patient client is only an option
(`settle=` seconds before the join, for measuring something else). `join_confirmed` proves a
join with a chat echo, the way the contract recommends.

Refusal has several shapes and all of them raise SioRateLimited: a `connect_error` naming
the rate limit, and CodeSync's own, a connection accepted and then disconnected by the
server within `refusal_window` seconds (no reason given; the contract's only cause is the
rate limit). `connect()` therefore watches the first `refusal_window` seconds after connect,
ending early when any event from the server proves the connection admitted.

Counts by event name and direction (`sent`, `received`) let a ledger reconcile message
totals; `error` events are collected in `errors` and never raised from the reader thread.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import socketio


class SioError(Exception):
    """Base of every Socket.IO client failure."""


class SioConnectError(SioError):
    """The server refused the connection (connect_error) or the transport failed."""


class SioRateLimited(SioConnectError):
    """The server refused the connection because the user's connection rate limit is reached."""


class SioDisconnectedAtConnect(SioRateLimited):
    """The server accepted the connection and disconnected it at once: CodeSync's rate-limit refusal."""


# How long after `connect` a server disconnect still counts as a refusal. CodeSync decides with
# one Redis query (milliseconds); the margin is for a loaded two-core machine.
REFUSAL_WINDOW_S = 0.5


class SioTimeout(SioError):
    """An expected event (connect, chat echo) did not arrive in time."""


class SioServerError(SioError):
    """The server answered with an `error {message}` event while we waited."""


@dataclass(frozen=True)
class ChatRoundTrip:
    """Our chat message as the server broadcast it, and the time from emit to echo (s)."""

    message: dict[str, Any]
    rtt: float


@dataclass(frozen=True)
class SioEvent:
    """One event as a ledger records it."""

    direction: str  # "outbound" (we emitted) or "inbound" (we received)
    name: str
    at: float  # time.perf_counter()


def sender_of(message: dict[str, Any]) -> str | None:
    """The author's user id in a chat:message:new payload, whichever shape the server uses."""
    for key in ("userId", "senderId", "authorId"):
        if isinstance(message.get(key), str):
            return message[key]
    for key in ("user", "sender", "author"):
        nested = message.get(key)
        if isinstance(nested, dict) and isinstance(nested.get("id"), str):
            return nested["id"]
    return None


class SocketIOClient:
    """One Socket.IO connection of one user; thread-safe for one emitter plus the reader."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        user_id: str | None = None,
        timeout: float = 10.0,
        observers: tuple[Callable[[SioEvent], None], ...] = (),
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.user_id = user_id
        self.timeout = timeout
        self.sent: Counter[str] = Counter()
        self.received: Counter[str] = Counter()
        self.errors: list[dict[str, Any]] = []
        self.connect_time: float | None = None
        self.disconnect_reason: str | None = None
        self.connected_at: float | None = None  # perf_counter of the server's connect
        self.join_sent_after: float | None = None  # seconds from connect to the eager session:join
        self.server_disconnect_after: float | None = None  # seconds from connect to a server disconnect
        self._join_on_connect: str | None = None
        self._observers = list(observers)
        self._lock = threading.Condition()
        self._waiting: dict[str, tuple[float, list[ChatRoundTrip]]] = {}
        self._refusal: str | None = None
        # No proxy from the environment: a load generator talks to its target directly.
        # websocket-client reads http_proxy itself and honours `http_no_proxy` only when a
        # proxy host is also given, hence the placeholder host that "*" then excludes.
        # No reconnection: a dropped connection is a result, not something to hide.
        self.sio = socketio.Client(
            reconnection=False,
            logger=False,
            engineio_logger=False,
            handle_sigint=False,
            websocket_extra_options={
                "http_proxy_host": "no-proxy.invalid",
                "http_proxy_port": 9,
                "http_no_proxy": ["*"],
            },
        )
        self.sio.on("connect", self._on_connect)
        self.sio.on("connect_error", self._on_connect_error)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on("*", self._on_event)

    # -- connection ------------------------------------------------------------------------

    def observe(self, observer: Callable[[SioEvent], None]) -> None:
        """Call `observer(event)` for every event emitted or received."""
        self._observers.append(observer)

    @property
    def connected(self) -> bool:
        """Connected, and not disconnected by the server since (python-socketio's own flag can be
        set back to True by connect() after the server's DISCONNECT was already handled)."""
        return bool(self.sio.connected) and self.server_disconnect_after is None

    def connect(
        self, *, join: str | None = None, settle: float = 0.0, refusal_window: float = REFUSAL_WINDOW_S
    ) -> float:
        """Connect and wait for the server's connect; returns the connect time in seconds.

        `join`: a session id to join, emitted from the `connect` handler (eager, the browser's
        way) or, with `settle` > 0, that many seconds after connect (a patient client: an
        option for measuring something else, never the default). `refusal_window`: see the
        module docstring; 0 returns at once (the caller classifies, e.g. with a chat probe).
        Raises SioRateLimited (either refusal shape) or SioConnectError.
        """
        self._refusal = None
        self.server_disconnect_after = None
        self.connected_at = None
        self.disconnect_reason = None
        self.join_sent_after = None
        self._join_on_connect = join if settle <= 0 else None
        started = time.perf_counter()
        try:
            self.sio.connect(
                self.base_url,
                auth={"token": self.token} if self.token else None,
                transports=["websocket"],
                socketio_path="socket.io",
                # python-socketio's own wait misses a DISCONNECT handled before it wakes (CodeSync's
                # refusal) and then waits out its whole timeout: the client waits for the
                # namespace's answer itself (connect, connect_error or disconnect).
                wait=False,
            )
        except socketio.exceptions.ConnectionError as err:
            reason = self._refusal or str(err)
            raise SioConnectError(f"Socket.IO connection to {self.base_url} failed: {reason}") from None
        self._await_answer(time.monotonic() + self.timeout)
        if self.server_disconnect_after is not None:  # connected, then disconnected at once
            raise SioDisconnectedAtConnect(
                f"Socket.IO connection refused: the server disconnected it {self._after_ms()} after connect "
                "(CodeSync refuses an over-limit connection so)"
            )
        if self.connected_at is None:
            self._drop()
            if self._refusal is not None:
                if "rate limit" in self._refusal.lower():
                    raise SioRateLimited(f"Socket.IO connection refused: {self._refusal}")
                raise SioConnectError(f"Socket.IO connection to {self.base_url} failed: {self._refusal}")
            if self.disconnect_reason is not None:
                raise SioConnectError(
                    f"Socket.IO connection to {self.base_url} failed: {self.disconnect_reason} before connect"
                )
            raise SioConnectError(
                f"Socket.IO connection to {self.base_url} failed: no connect from the server within {self.timeout:g} s"
            )
        self.connect_time = time.perf_counter() - started
        if join is not None and settle > 0:
            time.sleep(settle)
            self._emit_join(join)
        if self.refused_by_disconnect() or (refusal_window > 0 and not self._admitted_within(refusal_window)):
            raise SioDisconnectedAtConnect(
                f"Socket.IO connection refused: the server disconnected it {self._after_ms()} after connect "
                "(CodeSync refuses an over-limit connection so)"
            )
        return self.connect_time

    def _await_answer(self, deadline: float) -> None:
        """Wait until the server answered the namespace connect (connect, connect_error or a
        disconnect) or `deadline` (time.monotonic) passed."""
        with self._lock:
            while self.connected_at is None and self._refusal is None and self.disconnect_reason is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._lock.wait(left)

    def _drop(self) -> None:
        """Close the transport of a connection that never connected its namespace."""
        with contextlib.suppress(Exception):
            self.sio.disconnect()

    def _after_ms(self) -> str:
        after = self.server_disconnect_after
        return f"{after * 1000:.0f} ms" if after is not None else "moments"

    def _admitted_within(self, window: float) -> bool:
        """False when the server disconnected us within `window` s of connect; True as soon as
        an event from the server arrives, or the window passed without a disconnect."""
        deadline = time.monotonic() + window
        with self._lock:
            while True:
                if self.server_disconnect_after is not None:
                    return self.server_disconnect_after > window
                if self.disconnect_reason is not None or sum(self.received.values()):
                    return True  # heard from (admitted), or lost otherwise: a later call says how
                left = deadline - time.monotonic()
                if left <= 0:
                    return True
                self._lock.wait(left)

    def refused_by_disconnect(self, window: float = REFUSAL_WINDOW_S) -> bool:
        """Whether the server disconnected this connection within `window` s of its connect."""
        return self.server_disconnect_after is not None and self.server_disconnect_after <= window

    def _emit_join(self, session_id: str) -> None:
        if self.connected_at is not None:
            self.join_sent_after = time.perf_counter() - self.connected_at
        self.join(session_id)

    def disconnect(self, flush_timeout: float = 2.0) -> None:
        """Disconnect after every emitted packet went out (at most `flush_timeout` s of waiting).

        python-socketio queues emits for a writer task and closes the WebSocket right after
        queueing the close, so an emit just before disconnect (a session:leave) could be
        dropped and never counted by the server.
        """
        if self.sio.connected:
            self.flush_emits(flush_timeout)
            self.sio.disconnect()

    def flush_emits(self, timeout: float = 2.0) -> bool:
        """Wait until every emitted packet went out on the socket (True), at most `timeout`.

        engineio's queue marks each packet done after sending it, so waiting for no unfinished
        packet is waiting for the send.
        """
        queue = getattr(getattr(self.sio, "eio", None), "queue", None)
        if queue is None:
            return True
        if hasattr(queue, "all_tasks_done"):  # the standard library's queue.Queue
            with queue.all_tasks_done:
                return queue.all_tasks_done.wait_for(lambda: queue.unfinished_tasks == 0, timeout)
        return bool(queue.join(timeout=timeout))  # gevent.queue.Queue, as under Locust

    # -- reader-side handlers --------------------------------------------------------------

    def _notify(self, direction: str, name: str) -> None:
        event = SioEvent(direction, name, time.perf_counter())
        for observer in self._observers:
            observer(event)

    def _on_connect(self) -> None:
        """The server's connect: an eager client emits its join right here, as socket.io-client does."""
        self.connected_at = time.perf_counter()
        self.disconnect_reason = None
        # python-socketio sets `connected` only once connect() wakes up, and ignores a DISCONNECT
        # handled before that; CodeSync's refusal (connect, then disconnect at once) arrives
        # exactly then, so the client would believe itself connected. Connected it is, from here.
        self.sio.connected = True
        if self._join_on_connect is not None:
            self._emit_join(self._join_on_connect)
        with self._lock:
            self._lock.notify_all()

    def _on_connect_error(self, data: Any = None) -> None:
        if isinstance(data, dict) and "message" in data:
            self._refusal = str(data["message"])
        else:
            self._refusal = str(data) if data is not None else "connect_error"
        with self._lock:
            self._lock.notify_all()

    def _on_disconnect(self, reason: Any = None) -> None:
        self.disconnect_reason = str(reason) if reason is not None else "disconnected"
        if reason == self.sio.reason.SERVER_DISCONNECT and self.connected_at is not None:
            self.server_disconnect_after = time.perf_counter() - self.connected_at
        with self._lock:
            self._lock.notify_all()

    def _on_event(self, event: str, *args: Any) -> None:
        arrived = time.perf_counter()
        payload = args[0] if args else None
        with self._lock:
            self.received[event] += 1
            if event == "error":
                self.errors.append(payload if isinstance(payload, dict) else {"message": payload})
            elif event == "chat:message:new" and isinstance(payload, dict):
                waiter = self._waiting.get(str(payload.get("content")))
                author = sender_of(payload)
                if waiter is not None and (self.user_id is None or author is None or author == self.user_id):
                    started, box = waiter
                    box.append(ChatRoundTrip(payload, arrived - started))
            self._lock.notify_all()
        self._notify("inbound", event)

    # -- emitting --------------------------------------------------------------------------

    def emit(self, event: str, data: Any) -> None:
        """Emit one event and count it; SioError when the server has disconnected us."""
        try:
            self.sio.emit(event, data)
        except socketio.exceptions.BadNamespaceError:
            raise SioError(f"cannot emit {event}: disconnected ({self.disconnect_reason})") from None
        with self._lock:
            self.sent[event] += 1
        self._notify("outbound", event)

    def join(self, session_id: str) -> None:
        """Emit session:join (no ack from the server: see join_confirmed)."""
        self.emit("session:join", session_id)

    def leave(self, session_id: str) -> None:
        self.emit("session:leave", session_id)

    def join_confirmed(self, session_id: str, timeout: float | None = None) -> ChatRoundTrip:
        """Join and prove it with a chat round trip (the only confirmation the server gives)."""
        self.join(session_id)
        return self.chat(session_id, f"joined {uuid.uuid4().hex[:12]}", timeout=timeout)

    def chat(
        self,
        session_id: str,
        content: str | None = None,
        *,
        msg_type: str = "TEXT",
        timeout: float | None = None,
    ) -> ChatRoundTrip:
        """Send a chat message and wait for its echo from the server (sender included).

        The echo is recognised by its content (a unique nonce when none is given) and, when
        the user id is known, by its author. An `error` event during the wait raises
        SioServerError with the server's message; no echo in time raises SioTimeout.
        """
        content = content if content is not None else f"msg {uuid.uuid4().hex}"
        box: list[ChatRoundTrip] = []
        with self._lock:
            errors_before = len(self.errors)
            self._waiting[content] = (time.perf_counter(), box)
        try:
            self.emit("chat:message:send", {"sessionId": session_id, "content": content, "type": msg_type})
            deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
            with self._lock:
                while not box:
                    if len(self.errors) > errors_before:
                        raise SioServerError(f"chat:message:send refused: {self.errors[-1].get('message')}")
                    if not self.connected:
                        raise SioError(f"disconnected while waiting for the chat echo ({self.disconnect_reason})")
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise SioTimeout(f"no chat:message:new echo for {content!r} in session {session_id}")
                    self._lock.wait(left)
                return box[0]
        finally:
            with self._lock:
                self._waiting.pop(content, None)

    def react(self, message_id: str, emoji: str) -> None:
        self.emit("chat:message:react", {"messageId": message_id, "emoji": emoji})

    def cursor(self, session_id: str, line: int, column: int) -> None:
        self.emit("cursor:update", {"sessionId": session_id, "line": line, "column": column})

    def typing(self, session_id: str, active: bool = True) -> None:
        self.emit("typing:start" if active else "typing:stop", session_id)

    def wait_for(self, event: str, count: int, timeout: float | None = None) -> int:
        """Block until `received[event] >= count`; returns the count, raises SioTimeout."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        with self._lock:
            while self.received[event] < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SioTimeout(f"received {self.received[event]} {event!r} events, expected {count}")
                self._lock.wait(left)
            return self.received[event]
