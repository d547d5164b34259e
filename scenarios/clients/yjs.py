"""The CodeSync Yjs client: pycrdt over `websockets.sync`, with measured sync and propagation.

    >>> editor = YjsClient("ws://127.0.0.1:4001", f"{session_id}:src/main.py", name="ada")
    >>> editor.connect()                     # returns the connect+sync time in seconds
    >>> editor.insert(0, "x")                # one Update frame, sampled by the other clients
    >>> editor.set_cursor(1, 2)              # awareness {user: {name, color, file}, cursor}
    >>> other.wait_for(lambda c: c.text() == editor.text())
    >>> other.latencies                      # propagation samples (s), one per edit of others
    >>> editor.close()

Protocol, eager like y-websocket's browser client: as soon as the socket opens we send our
SyncStep1 and our awareness state ({user: {name, color, file}}), without waiting for the
server's SyncStep1; we answer the server's SyncStep1 with SyncStep2, and the connection is
synced when the server's SyncStep2 (its answer to ours) has been applied. A server that starts
reading a connection only after an asynchronous check drops that first frame and leaves the
client unsynced (YjsSyncTimeout): a defect to report (the check yjs-eager-sync), not to hide.
`eager=False` is the patient client, an option for measuring something else: it waits for the
server's SyncStep1 before sending its own and sends no awareness until asked. After the sync a
background reader (a thread, a greenlet under gevent) applies remote updates and answers
re-syncs; pings are answered by `websockets` itself.

Propagation samples come only from edits made after this connection opened (EditTracker's
`opened`): the state a server transfers on (re)connect, in SyncStep2 or in an Update that
follows it (CodeSync loads stored state asynchronously), holds old edits, not propagation.

Edits are sent as `doc.get_update(state_vector_before)`, which costs less than a document
observer on every remote apply (field notes), and the server's echo of our own updates is
counted apart from the others' updates. Propagation latency comes from `propagation`: see
there for why (client id, clock) names an edit without touching the text. Naming edits,
recognising echoes and sampling live in `propagation.EditTracker`, shared with
`yjs_lean.LeanYjsConnection`, the Locust users' client (same events and samples, without the
thread and the ~60 KB per connection this one costs under gevent); this client serves plain
Python: tests, the smoke check, the verifier.
The edit and awareness methods themselves (insert, delete, replace, set_cursor, sample
keeping) are `text_edits.TextEdits`, the base class of both clients.

Every failure has a typed error whose name says what failed: YjsConnectError (refused, HTTP
status), YjsRateLimited (close 1008), YjsClosed (any other close), YjsSyncTimeout, YjsTimeout,
YjsProtocolError (a malformed frame). A failure in the reader is kept in `failure` and
raised by the next call.
"""

from __future__ import annotations

import contextlib
import inspect
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, NamedTuple
from urllib.parse import quote

import pycrdt
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

from codesync_load.errors import TargetUnreachable
from scenarios.clients import yprotocol as yp
from scenarios.clients.propagation import (
    DEFAULT_REGISTRY,
    EditRegistry,
    EditTracker,
    near_start_keystroke,
    wall_clock,
)
from scenarios.clients.pycrdt_core import apply_update
from scenarios.clients.text_edits import TextEdits, announced

TEXT_NAME = "codesync"
CLOSE_POLICY_VIOLATION = 1008
_CONNECT_PARAMETERS = inspect.signature(ws_connect).parameters
# websockets >= 15 reads proxy variables unless told not to; >= 16 warns unless legacy=True.
_VERSION_FLAGS = {name: value for name, value in (("proxy", None), ("legacy", True)) if name in _CONNECT_PARAMETERS}
_USE_DEFAULT_REGISTRY: Any = object()


class YjsError(Exception):
    """Base of every Yjs client failure."""


class YjsConnectError(YjsError, TargetUnreachable):
    """The WebSocket could not be opened (refused, unreachable, HTTP status, handshake timeout)."""


class YjsClosed(YjsError):
    """The server closed the connection; `code` and `reason` are what it sent."""

    def __init__(self, message: str, code: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class YjsRateLimited(YjsClosed):
    """The server closed with 1008: the per-IP connection rate limit is reached."""


class YjsTimeout(YjsError, TimeoutError):
    """Something awaited (text, samples, echoes) did not happen in time."""


class YjsSyncTimeout(YjsTimeout):
    """The server's SyncStep1 or SyncStep2 did not arrive in time."""


class YjsProtocolError(YjsError):
    """The server sent something that is not a y-websocket v1 message, or an update pycrdt rejects."""


class YjsEvent(NamedTuple):
    """What a ledger or Locust hears: frames sent/received by kind, and latency samples.

    A NamedTuple (immutable, like the frozen dataclass it was) because one is made per frame
    and per sample on the load generator's hot path, where a tuple costs a quarter as much.
    """

    what: str  # "sent", "received" or "latency"
    kind: str  # frame kind ("update", "awareness", ...), "echo", or "propagation"
    value: float | None = None  # seconds, for latency


class YjsClient(TextEdits):
    """One editor of one document. Not for use by two emitting threads at once.

    WebSocket options are explicit because the library's defaults do not suit a load
    generator: no per-message deflate (y-websocket does not use it and it costs CPU), no proxy
    from the environment, a 64 MiB message cap (a SyncStep2 of a large document exceeds the
    default 1 MiB), and no client pings by default (the browser sends none; the server pings
    every 30 s and `websockets` answers). `source_address` binds the socket to a loopback
    address such as 127.0.0.2 so that the server's per-IP limit sees another client.
    `registry=None` disables in-process latency matching (announcements still work).
    """

    def __init__(
        self,
        base_url: str,
        document: str,
        *,
        name: str = "load",
        color: str = "#30bced",
        file: str | None = None,
        registry: EditRegistry | None = _USE_DEFAULT_REGISTRY,
        announce_edits: bool = False,
        source_address: str | None = None,
        open_timeout: float = 10.0,
        sync_timeout: float = 10.0,
        close_timeout: float = 2.0,
        max_size: int = 64 * 1024 * 1024,
        ping_interval: float | None = None,
        ping_timeout: float | None = None,
        text_name: str = TEXT_NAME,
        keep_samples: int = 100_000,
        observers: tuple[Callable[[YjsEvent], None], ...] = (),
        eager: bool = True,
    ) -> None:
        self.url = base_url.rstrip("/") + "/" + quote(document, safe="/:@!$&'()*+,;=-._~")
        self.document = document
        self.eager = eager
        self.registry = DEFAULT_REGISTRY if registry is _USE_DEFAULT_REGISTRY else registry
        self.announce_edits = announce_edits
        self.source_address = source_address
        self.open_timeout = open_timeout
        self.sync_timeout = sync_timeout
        self.close_timeout = close_timeout
        self.max_size = max_size
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.doc = pycrdt.Doc()
        self.client_id: int = self.doc.client_id
        self.ytext = self.doc.get(text_name, type=pycrdt.Text)
        self.user = {"name": name, "color": color, "file": file if file is not None else document}

        self.connect_time: float | None = None  # TCP + WebSocket handshake (s)
        self.sync_time: float | None = None  # connect + both sync steps (s)
        self.server_step1_seen = False  # the server spoke (its SyncStep1) whether or not we synced
        self.frames_sent: Counter[str] = Counter()
        self.frames_received: Counter[str] = Counter()
        self.updates_sent = 0
        self.updates_received = 0  # Update frames carrying the others' edits
        self.echoes_received = 0  # Update frames the server echoed back to us
        self.updates_applied = 0  # the others' updates applied to our document
        self.latencies: list[float] = []  # propagation samples (s), the first `keep_samples`
        self.latency_count = 0  # every sample, kept or not (observers see them all)
        self.keep_samples = keep_samples
        self.awareness_states: dict[int, Any] = {}
        self.failure: YjsError | None = None

        self._observers = list(observers)
        self._ws: ClientConnection | None = None
        self._reader: threading.Thread | None = None
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._closing = False
        self._server_step1 = False
        self._synced = False
        self._awareness_clock = 0
        self._awareness_state: dict[str, Any] | None = None
        self._tracker = EditTracker(self.client_id, self.registry)

    # -- connection --------------------------------------------------------------------------

    def observe(self, observer: Callable[[YjsEvent], None]) -> None:
        """Call `observer(event)` for every frame sent or received and every latency sample."""
        self._observers.append(observer)

    @property
    def synced(self) -> bool:
        return self._synced

    def connect(self) -> float:
        """Open, sync, start the reader; returns connect+sync time in seconds.

        Raises YjsConnectError, YjsRateLimited, YjsClosed, YjsSyncTimeout or YjsProtocolError.
        """
        started = time.perf_counter()
        options: dict[str, Any] = {
            "compression": None,
            "open_timeout": self.open_timeout,
            "close_timeout": self.close_timeout,
            "ping_interval": self.ping_interval,
            "ping_timeout": self.ping_timeout,
            "max_size": self.max_size,
            **_VERSION_FLAGS,
        }
        if self.source_address:
            options["source_address"] = (self.source_address, 0)
        try:
            self._ws = ws_connect(self.url, **options)
        except InvalidStatus as err:
            raise YjsConnectError(f"{self.url} refused the WebSocket with HTTP {err.response.status_code}") from None
        except TimeoutError:
            raise YjsConnectError(f"{self.url}: opening handshake timed out after {self.open_timeout:g} s") from None
        except (InvalidHandshake, InvalidURI) as err:
            raise YjsConnectError(f"{self.url}: WebSocket handshake failed: {err}") from None
        except OSError as err:
            source = f" from {self.source_address}" if self.source_address else ""
            raise YjsConnectError(f"cannot connect to {self.url}{source}: {err.strerror or err}") from None
        self.connect_time = time.perf_counter() - started
        self._tracker.opened(started, wall_clock() - self.connect_time)
        deadline = time.monotonic() + self.sync_timeout
        try:
            if self.eager:  # on open, as y-websocket's browser client: SyncStep1, then awareness
                with self._lock:
                    step1 = yp.sync_step1(self.doc.get_state())
                self._send(step1, "sync_step1")
                self._set_awareness({"user": self.user})
            while not self._synced:
                what = self._awaited()
                left = deadline - time.monotonic()
                if left <= 0:
                    raise YjsSyncTimeout(f"no {what} from {self.url} within {self.sync_timeout:g} s")
                try:
                    data = self._ws.recv(timeout=left)
                except TimeoutError:
                    raise YjsSyncTimeout(f"no {what} from {self.url} within {self.sync_timeout:g} s") from None
                except ConnectionClosed as err:
                    raise self._closed_error(err, f"while waiting for {what}") from None
                self._handle(data)
        except BaseException:
            self._abort()
            raise
        self.sync_time = time.perf_counter() - started
        self._reader = threading.Thread(target=self._read_loop, name=f"yjs-reader-{self.client_id}", daemon=True)
        self._reader.start()
        return self.sync_time

    def _awaited(self) -> str:
        """What the sync still waits for, as a timeout names it."""
        if self.eager:
            return "SyncStep2 in answer to our SyncStep1 sent on open (first frame lost?)"
        return "SyncStep2" if self._server_step1 else "SyncStep1"

    def _closed_error(self, err: ConnectionClosed, when: str) -> YjsClosed:
        frame = err.rcvd
        code = frame.code if frame is not None else None
        reason = frame.reason if frame is not None else ""
        if code == CLOSE_POLICY_VIOLATION:
            return YjsRateLimited(
                f"{self.url} closed the connection with 1008 {reason!r} {when}: the per-IP connection limit is "
                "reached; spread clients over source addresses (127.0.0.x) or raise the server's limit",
                code,
                reason,
            )
        described = f"code {code} {reason!r}" if code is not None else "without a close frame"
        return YjsClosed(f"{self.url} closed the connection {described} {when}", code, reason)

    def _abort(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                self._ws.close()

    def close(self) -> None:
        """Close the WebSocket and stop the reader. Safe to call twice, and after a failure."""
        self._closing = True
        if self._awareness_state is not None and self._ws is not None and self.failure is None:
            # tell the others we are gone, as the browser does on unload
            with contextlib.suppress(Exception):
                self._awareness_clock += 1
                self._send(
                    yp.awareness_frame(yp.encode_awareness([(self.client_id, self._awareness_clock, None)])),
                    "awareness",
                )
        self._abort()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout=self.close_timeout + 1.0)

    def __enter__(self) -> YjsClient:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ----------------------------------------------------------------------------

    def _read_loop(self) -> None:
        ws = self._ws
        assert ws is not None
        while True:
            try:
                data = ws.recv()
            except ConnectionClosed as err:
                if not self._closing:
                    self._fail(self._closed_error(err, "after sync"))
                break
            except Exception as err:  # the socket died under us (reset, EOF)
                if not self._closing:
                    self._fail(YjsClosed(f"{self.url}: connection lost: {err}"))
                break
            try:
                self._handle(data)
            except YjsError as err:
                self._fail(err)
                self._abort()
                break
        with self._changed:
            self._changed.notify_all()

    def _fail(self, err: YjsError) -> None:
        with self._changed:
            if self.failure is None:
                self.failure = err
            self._changed.notify_all()

    def raise_if_failed(self) -> None:
        """Raise the reader's failure (closed, protocol error) if there was one."""
        if self.failure is not None:
            raise self.failure

    def _handle(self, data: bytes | str) -> None:
        """Process one message from the server (connect loop and reader thread)."""
        if isinstance(data, str):
            raise YjsProtocolError(f"{self.url} sent a text frame; y-websocket speaks binary only: {data[:60]!r}")
        try:
            frame = yp.decode_frame(data)
        except yp.FrameError as err:
            raise YjsProtocolError(f"malformed frame from {self.url}: {err} (first bytes {data[:16].hex()})") from None
        kind, payload = frame
        if kind == "update":
            self._on_update(payload)
        else:
            samples: list[float] = []
            with self._changed:
                self.frames_received[kind] += 1
                if kind == "sync_step1":
                    self._on_sync_step1(payload)
                elif kind == "sync_step2":
                    self._apply(payload, sample=False)
                    if self._server_step1 or self.eager:
                        self._synced = True
                else:
                    samples = self._on_awareness(payload)
                self._changed.notify_all()
            self._notify("received", kind)
            for sample in samples:
                self._notify("latency", "propagation", sample)

    def _on_sync_step1(self, state_vector: bytes) -> None:
        try:
            reply = self.doc.get_update(state_vector)
        except Exception as err:
            raise YjsProtocolError(f"{self.url} sent a SyncStep1 pycrdt cannot read: {err}") from None
        self._send(yp.sync_step2(reply), "sync_step2")
        self.server_step1_seen = True
        if not self._server_step1:
            self._server_step1 = True
            if not self.eager:  # the patient client sends its SyncStep1 only now
                self._send(yp.sync_step1(self.doc.get_state()), "sync_step1")

    def _is_echo(self, update: bytes) -> bool:
        try:
            return self._tracker.is_echo(update)
        except yp.FrameError as err:
            raise YjsProtocolError(f"{self.url} sent an unreadable update: {err}") from None

    def _on_update(self, update: bytes) -> None:
        with self._changed:
            echo = self._is_echo(update)
            self.frames_received["update"] += 1
            if echo:
                self.echoes_received += 1
            else:
                self.updates_received += 1
                samples = self._apply(update, sample=True)
                self.updates_applied += 1
            self._changed.notify_all()
        self._notify("received", "echo" if echo else "update")
        if not echo:
            for sample in samples:
                self._notify("latency", "propagation", sample)

    def _apply(self, update: bytes, *, sample: bool) -> list[float]:
        """Apply a remote update (lock held); with `sample`, return the latencies it completes."""
        try:
            if not sample:
                self._tracker.state_changed()
                apply_update(self.doc, update)
                return []
            samples = self._tracker.apply(self.doc, update)
        except Exception as err:
            raise YjsProtocolError(f"{self.url} sent an update pycrdt rejects: {err}") from None
        self._keep(samples)
        return samples

    def _on_awareness(self, payload: bytes) -> list[float]:
        """Track the others' awareness states; returns latencies completed by edit announcements."""
        try:
            entries = yp.decode_awareness(payload)
        except yp.FrameError as err:
            raise YjsProtocolError(f"malformed awareness update from {self.url}: {err}") from None
        samples = self._tracker.awareness(entries, self.awareness_states)
        self._keep(samples)
        return samples

    # -- writing ----------------------------------------------------------------------------

    def _notify(self, what: str, kind: str, value: float | None = None) -> None:
        if self._observers:
            event = YjsEvent(what, kind, value)
            for observer in self._observers:
                observer(event)

    def _send(self, frame: bytes, kind: str) -> None:
        if self._ws is None:
            raise YjsError("not connected; call connect() first")
        try:
            self._ws.send(frame)
        except ConnectionClosed as err:
            raise self._closed_error(err, f"while sending {kind}") from None
        with self._lock:
            self.frames_sent[kind] += 1
        self._notify("sent", kind)

    def _edit(self, change: Callable[[], None]) -> int | None:
        """Apply a local change and send it as one Update; returns its start clock (None: no insert)."""
        self.raise_if_failed()
        if not self._synced:
            raise YjsError("not synced; call connect() first")
        with self._lock:
            # recorded before the send: an in-process receiver may apply it before send() returns
            update, start = self._tracker.local_edit(self.doc, change)
        sent_wall = wall_clock()
        self._send(yp.update_frame(update), "update")
        with self._lock:
            self.updates_sent += 1
        if start is not None and self.announce_edits:
            self._set_awareness(announced(self._awareness_state, self.user, start, sent_wall))
        return start

    def type_near_start(self, rng: random.Random, *, window: int = 16, max_length: int = 4000) -> int | None:
        """A load-style keystroke: one character at a random spot among the first `window`.

        See `propagation.near_start_keystroke` (shared with the lean connection): past
        `max_length` it replaces a character, so the text stops growing and every keystroke
        still yields a sample.
        """
        with self._lock:
            change = near_start_keystroke(self.ytext, rng, window=window, max_length=max_length)
        return self._edit(change)  # not under the lock: a blocked send must not stop the reader

    def _set_awareness(self, state: dict[str, Any]) -> None:
        self._awareness_state = state
        self._awareness_clock += 1
        payload = yp.encode_awareness([(self.client_id, self._awareness_clock, state)])
        self._send(yp.awareness_frame(payload), "awareness")

    def _cursor_user(self, file: str | None) -> dict[str, Any]:
        """`user` for set_cursor (TextEdits): our user, with `file` when one is given."""
        user = dict(self.user)
        if file is not None:
            user["file"] = file
        return user

    # -- reading the document ------------------------------------------------------------------

    def text(self) -> str:
        with self._lock:
            return str(self.ytext)

    def counters(self) -> dict[str, int]:
        """A snapshot for a ledger: frames by kind and direction, updates, echoes, samples."""
        with self._lock:
            snapshot = {f"sent_{kind}": n for kind, n in self.frames_sent.items()}
            snapshot.update({f"received_{kind}": n for kind, n in self.frames_received.items()})
            snapshot.update(
                updates_sent=self.updates_sent,
                updates_received=self.updates_received,
                echoes_received=self.echoes_received,
                updates_applied=self.updates_applied,
                latency_samples=self.latency_count,
            )
            return snapshot

    def wait_for(self, condition: Callable[[YjsClient], bool], timeout: float = 10.0, what: str = "condition") -> None:
        """Block until `condition(self)` holds (checked after every frame); YjsTimeout otherwise.

        A reader failure raises that failure instead of waiting out the timeout.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition(self):
                self.raise_if_failed()
                if self._reader is not None and not self._reader.is_alive():
                    raise YjsClosed(f"{self.url}: connection closed while waiting for {what}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise YjsTimeout(f"{what} not reached within {timeout:g} s on {self.url}")
                self._changed.wait(min(left, 0.5))
