"""A lean Yjs connection for gevent (Locust): no thread and no greenlet of its own.

    >>> conn = LeanYjsConnection("ws://127.0.0.1:4001", f"{session_id}:src/main.py", source_address="127.0.0.2")
    >>> conn.connect()                 # handshake + both sync steps in the calling greenlet; seconds
    >>> conn.type_near_start(rng)      # one Update frame, sent from the calling greenlet
    >>> conn.updates_sent, conn.updates_applied, conn.echoes_received, conn.pings_answered
    >>> conn.close()

Why it exists: `YjsClient` runs on `websockets.sync`, which under gevent costs two greenlets
per connection (websockets' own receiver and our reader), locks and condition variables per
frame, and about 59 KB per idle connection (field notes). A load generator that must hold
10,000 viewers in one process, or push a saturated edit stream, pays that on every frame.
Here a connection is a non-blocking socket, a libev read watcher on gevent's hub and a small
frame buffer: incoming frames are handled in the watcher's callback (pings answered, updates
applied), so an idle connection costs no greenlet at all, and sends go straight to the socket.

What it does not do (use `YjsClient` for those): awareness states, latency samples,
per-message deflate, TLS. The WebSocket handshake and framing (RFC 6455, client side) are
written here because that is the whole point; the y-websocket messages come from
`yprotocol`. Errors are `YjsClient`'s: YjsConnectError, YjsRateLimited, YjsClosed,
YjsSyncTimeout, YjsProtocolError. A failure after sync is kept in `failure`.

Needs gevent (installed with Locust); works with or without monkey-patching.
"""

from __future__ import annotations

import _socket
import base64
import contextlib
import hashlib
import os
import random
import time
from urllib.parse import quote, urlsplit

import gevent
import gevent.socket
import pycrdt

from scenarios.clients import yprotocol as yp
from scenarios.clients.yjs import (
    CLOSE_POLICY_VIOLATION,
    TEXT_NAME,
    YjsClosed,
    YjsConnectError,
    YjsError,
    YjsProtocolError,
    YjsRateLimited,
    YjsSyncTimeout,
)

OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
_ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_READ_CHUNK = 65536
_EV_READ, _EV_WRITE = 1, 2  # libev/libuv event masks, as gevent's loop.io takes them
_MAX_HEAD = 16384


class WsFrameError(YjsProtocolError):
    """A WebSocket frame that breaks RFC 6455 (masked by the server, unknown opcode, oversized)."""


def mask_payload(payload: bytes, mask: bytes) -> bytes:
    """XOR `payload` with the repeated 4-byte `mask`, as RFC 6455 wants every client frame."""
    size = len(payload)
    if not size:
        return b""
    key = int.from_bytes((mask * (size // 4 + 1))[:size], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(size, "big")


def client_frame(opcode: int, payload: bytes, mask: bytes | None = None) -> bytes:
    """One final, masked client frame. The mask is random per frame, not secret (no browser cache here)."""
    mask = mask if mask is not None else random.getrandbits(32).to_bytes(4, "big")
    size = len(payload)
    if size < 126:
        head = bytes((0x80 | opcode, 0x80 | size))
    elif size < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + size.to_bytes(8, "big")
    return head + mask + mask_payload(payload, mask)


class FrameReader:
    """Cuts a server's byte stream into (opcode, payload) messages, fragments joined.

    Control frames (ping, pong, close) come out as they arrive, even between fragments.
    """

    __slots__ = ("_buffer", "_fragment_op", "_fragments", "max_size")

    def __init__(self, max_size: int = 64 * 1024 * 1024) -> None:
        self._buffer = bytearray()
        self._fragment_op: int | None = None
        self._fragments: list[bytes] | None = None
        self.max_size = max_size

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Add received bytes; return the complete messages they finish, in order."""
        buffer = self._buffer
        buffer += data
        messages: list[tuple[int, bytes]] = []
        pos = 0
        end = len(buffer)
        while end - pos >= 2:
            first, second = buffer[pos], buffer[pos + 1]
            if second & 0x80:
                raise WsFrameError("the server sent a masked frame; RFC 6455 forbids it")
            if first & 0x70:
                raise WsFrameError("the server set RSV bits without a negotiated extension")
            size = second & 0x7F
            head = 2
            if size == 126:
                if end - pos < 4:
                    break
                size, head = int.from_bytes(buffer[pos + 2 : pos + 4], "big"), 4
            elif size == 127:
                if end - pos < 10:
                    break
                size, head = int.from_bytes(buffer[pos + 2 : pos + 10], "big"), 10
            if size > self.max_size:
                raise WsFrameError(f"a frame of {size} bytes exceeds the {self.max_size}-byte cap")
            if end - pos < head + size:
                break
            payload = bytes(buffer[pos + head : pos + head + size])
            pos += head + size
            opcode = first & 0x0F
            if opcode >= OP_CLOSE:
                if opcode not in (OP_CLOSE, OP_PING, OP_PONG):
                    raise WsFrameError(f"unknown control opcode {opcode}")
                messages.append((opcode, payload))
                continue
            if opcode == OP_CONTINUATION:
                if self._fragments is None:
                    raise WsFrameError("a continuation frame without a message to continue")
                self._fragments.append(payload)
            elif opcode in (OP_TEXT, OP_BINARY):
                if self._fragments is not None:
                    raise WsFrameError("a new message began before the fragmented one ended")
                if first & 0x80:
                    messages.append((opcode, payload))
                    continue
                self._fragment_op, self._fragments = opcode, [payload]
            else:
                raise WsFrameError(f"unknown data opcode {opcode}")
            if first & 0x80:
                assert self._fragment_op is not None and self._fragments is not None
                joined = b"".join(self._fragments)
                if len(joined) > self.max_size:
                    raise WsFrameError(f"a message of {len(joined)} bytes exceeds the {self.max_size}-byte cap")
                messages.append((self._fragment_op, joined))
                self._fragment_op, self._fragments = None, None
        if pos:
            del buffer[:pos]
        return messages


def _accept_key(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + _ACCEPT_GUID).digest())


class LeanYjsConnection:
    """One synced Yjs connection; reading happens in a hub callback, writing in the caller.

    Not for two emitting greenlets at once. `source_address` binds the socket to a loopback
    address (127.0.0.x) so that a server's per-IP limit sees another client.
    """

    __slots__ = (
        "_out",
        "_read_watcher",
        "_reader",
        "_server_step1",
        "_sock",
        "_write_watcher",
        "client_id",
        "close_code",
        "connect_time",
        "doc",
        "document",
        "echoes_received",
        "failure",
        "frames_received",
        "host",
        "path",
        "pings_answered",
        "port",
        "source_address",
        "sync_time",
        "synced",
        "text",
        "timeout",
        "updates_applied",
        "updates_sent",
        "url",
    )

    def __init__(
        self,
        base_url: str,
        document: str,
        *,
        source_address: str | None = None,
        timeout: float = 10.0,
        max_size: int = 64 * 1024 * 1024,
        text_name: str = TEXT_NAME,
    ) -> None:
        self.url = base_url.rstrip("/") + "/" + quote(document, safe="/:@!$&'()*+,;=-._~")
        parts = urlsplit(self.url)
        if parts.scheme != "ws" or not parts.hostname:
            raise YjsConnectError(f"{self.url}: the lean client speaks plain ws:// only; use YjsClient for wss://")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.path = parts.path or "/"
        self.document = document
        self.source_address = source_address
        self.timeout = timeout
        self.doc = pycrdt.Doc()
        self.client_id: int = self.doc.client_id
        self.text = self.doc.get(text_name, type=pycrdt.Text)
        self._reader = FrameReader(max_size)
        self._sock: _socket.socket | None = None
        self._read_watcher = None
        self._write_watcher = None
        self._out = bytearray()
        self._server_step1 = False
        self.synced = False
        self.connect_time: float | None = None
        self.sync_time: float | None = None
        self.updates_sent = 0
        self.updates_applied = 0  # the others' updates applied to our document
        self.echoes_received = 0  # our own updates as the server echoed them back
        self.frames_received = 0
        self.pings_answered = 0
        self.close_code: int | None = None
        self.failure: YjsError | None = None

    # -- connecting --------------------------------------------------------------------------

    def connect(self) -> float:
        """Open, upgrade, sync (blocking this greenlet only); returns connect+sync seconds."""
        started = time.perf_counter()
        deadline = time.monotonic() + self.timeout
        try:
            sock = gevent.socket.create_connection(
                (self.host, self.port),
                timeout=self.timeout,
                source_address=(self.source_address, 0) if self.source_address else None,
            )
        except OSError as err:
            source = f" from {self.source_address}" if self.source_address else ""
            raise YjsConnectError(f"cannot connect to {self.url}{source}: {err.strerror or err}") from None
        try:
            rest = self._upgrade(sock)
        except BaseException:
            sock.close()
            raise
        # From here on the socket is a plain non-blocking one driven by hub watchers.
        self._sock = _socket.socket(fileno=sock.detach())
        self._sock.setblocking(False)
        self.connect_time = time.perf_counter() - started
        try:
            if rest:
                self._on_data(rest)
            while not self.synced:
                if self.failure is not None:
                    raise self.failure
                left = deadline - time.monotonic()
                what = "SyncStep2" if self._server_step1 else "SyncStep1"
                if left <= 0:
                    raise YjsSyncTimeout(f"no {what} from {self.url} within {self.timeout:g} s")
                try:
                    gevent.socket.wait_read(self._sock.fileno(), timeout=left)
                except gevent.socket.timeout:
                    raise YjsSyncTimeout(f"no {what} from {self.url} within {self.timeout:g} s") from None
                self._on_readable()
            if self.failure is not None:
                raise self.failure
        except BaseException:
            self._shutdown()
            raise
        self.sync_time = time.perf_counter() - started
        self._read_watcher = gevent.get_hub().loop.io(self._sock.fileno(), _EV_READ)
        self._read_watcher.start(self._on_readable)
        return self.sync_time

    def _upgrade(self, sock: gevent.socket.socket) -> bytes:
        """Send the opening handshake, check the 101 answer; returns bytes read past it."""
        key = base64.b64encode(os.urandom(16))
        request = (
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        try:
            sock.sendall(request)
            head = bytearray()
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk:
                    raise YjsConnectError(f"{self.url} closed the connection during the WebSocket handshake")
                head += chunk
                if len(head) > _MAX_HEAD:
                    raise YjsConnectError(f"{self.url} answered the handshake with over {_MAX_HEAD} bytes of headers")
        except TimeoutError:
            raise YjsConnectError(f"{self.url}: opening handshake timed out after {self.timeout:g} s") from None
        except OSError as err:
            raise YjsConnectError(f"{self.url}: WebSocket handshake failed: {err.strerror or err}") from None
        raw_head, _, rest = bytes(head).partition(b"\r\n\r\n")
        lines = raw_head.decode("latin-1").split("\r\n")
        status = lines[0].split(" ", 2)
        if len(status) < 2 or status[1] != "101":
            code = status[1] if len(status) > 1 else "?"
            raise YjsConnectError(f"{self.url} refused the WebSocket with HTTP {code}")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("sec-websocket-accept", "").encode() != _accept_key(key):
            raise YjsConnectError(f"{self.url}: WebSocket handshake failed: wrong Sec-WebSocket-Accept")
        return rest

    # -- reading (hub callback) ----------------------------------------------------------------

    def _on_readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            data = sock.recv(_READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as err:
            self._fail(YjsClosed(f"{self.url}: connection lost: {err.strerror or err}"))
            return
        if not data:
            self._fail(YjsClosed(f"{self.url} closed the connection without a close frame"))
            return
        try:
            self._on_data(data)
        except YjsError as err:
            self._fail(err)
        except Exception as err:  # never let a hub callback raise: libev would call it again and again
            self._fail(YjsProtocolError(f"{self.url}: cannot handle what the server sent: {err!r}"))

    def _on_data(self, data: bytes) -> None:
        for opcode, payload in self._reader.feed(data):
            if self._sock is None:
                return
            if opcode == OP_BINARY:
                self._on_message(payload)
            elif opcode == OP_PING:
                self._send(client_frame(OP_PONG, payload))
                self.pings_answered += 1
            elif opcode == OP_CLOSE:
                self._on_close(payload)
                return
            elif opcode == OP_TEXT:
                raise YjsProtocolError(f"{self.url} sent a text frame; y-websocket speaks binary only")

    def _on_message(self, data: bytes) -> None:
        try:
            kind, payload = yp.decode_frame(data)
        except yp.FrameError as err:
            raise YjsProtocolError(f"malformed frame from {self.url}: {err} (first bytes {data[:16].hex()})") from None
        self.frames_received += 1
        try:
            if kind == "update":
                # One block by our client id is our echo; an update of ours that only deletes has
                # no author and counts as applied (this client's keystrokes always insert).
                blocks, author = yp.update_authors(payload)
                if blocks == 1 and author == self.client_id:
                    self.echoes_received += 1
                else:
                    self.doc.apply_update(payload)
                    self.updates_applied += 1
            elif kind == "sync_step1":
                self._send(client_frame(OP_BINARY, yp.sync_step2(self.doc.get_update(payload))))
                if not self._server_step1:
                    self._server_step1 = True
                    self._send(client_frame(OP_BINARY, yp.sync_step1(self.doc.get_state())))
            elif kind == "sync_step2":
                self.doc.apply_update(payload)
                if self._server_step1:
                    self.synced = True
        except yp.FrameError as err:
            raise YjsProtocolError(f"{self.url} sent an unreadable update: {err}") from None
        except YjsError:
            raise
        except Exception as err:  # pycrdt rejects the update or state vector
            raise YjsProtocolError(f"{self.url} sent a {kind} pycrdt rejects: {err}") from None

    def _on_close(self, payload: bytes) -> None:
        code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
        reason = payload[2:].decode("utf-8", "replace")
        self.close_code = code
        self._send(client_frame(OP_CLOSE, payload[:2]))
        if code == CLOSE_POLICY_VIOLATION:
            err: YjsClosed = YjsRateLimited(
                f"{self.url} closed the connection with 1008 {reason!r}: the per-IP connection limit is reached; "
                "spread clients over source addresses (127.0.0.x) or raise the server's limit",
                code,
                reason,
            )
        else:
            described = f"code {code} {reason!r}" if code is not None else "without a status code"
            err = YjsClosed(f"{self.url} closed the connection {described}", code, reason)
        self._fail(err)

    def _fail(self, err: YjsError) -> None:
        if self.failure is None:
            self.failure = err
        self._shutdown()

    # -- writing -----------------------------------------------------------------------------

    def _send(self, frame: bytes) -> None:
        """Write now if the socket takes it; keep the rest for a write watcher (order kept)."""
        if self._sock is None:
            raise self.failure or YjsError("not connected; call connect() first")
        if self._out:
            self._out += frame
            return
        try:
            sent = self._sock.send(frame)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as err:
            self._fail(YjsClosed(f"{self.url}: connection lost while sending: {err.strerror or err}"))
            raise self.failure from None  # type: ignore[misc]
        if sent < len(frame):
            self._out += frame[sent:]
            if self._write_watcher is None:
                self._write_watcher = gevent.get_hub().loop.io(self._sock.fileno(), _EV_WRITE)
            self._write_watcher.start(self._flush)

    def _flush(self) -> None:
        if self._sock is None:
            return
        try:
            sent = self._sock.send(self._out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as err:
            self._fail(YjsClosed(f"{self.url}: connection lost while sending: {err.strerror or err}"))
            return
        del self._out[:sent]
        if not self._out and self._write_watcher is not None:
            self._write_watcher.stop()

    def insert(self, index: int, text: str) -> None:
        """Insert `text` at `index`; one Update frame made of exactly this change."""
        if self.failure is not None:
            raise self.failure
        if not self.synced:
            raise YjsError("not synced; call connect() first")
        before = self.doc.get_state()
        self.text.insert(index, text)
        self._send(client_frame(OP_BINARY, yp.update_frame(self.doc.get_update(before))))
        self.updates_sent += 1

    def type_near_start(self, rng: random.Random, *, window: int = 16, max_length: int = 4000) -> None:
        """One keystroke among the first `window` characters, as `YjsClient.type_near_start`.

        Past `max_length` the keystroke replaces a character, so the text stops growing.
        """
        if self.failure is not None:
            raise self.failure
        if not self.synced:
            raise YjsError("not synced; call connect() first")
        size = len(self.text)
        position = rng.randint(0, min(size, window))
        char = rng.choice("abcdefghijklmnopqrstuvwxyz ")
        before = self.doc.get_state()
        with self.doc.transaction():
            if size >= max_length:
                position = min(position, size - 1)
                del self.text[position : position + 1]
            self.text.insert(position, char)
        self._send(client_frame(OP_BINARY, yp.update_frame(self.doc.get_update(before))))
        self.updates_sent += 1

    # -- closing -----------------------------------------------------------------------------

    @property
    def open(self) -> bool:
        return self._sock is not None and self.failure is None

    def close(self, code: int = 1000) -> None:
        """Send a close frame (best effort) and release the socket. Safe to call twice."""
        if self._sock is not None and self.failure is None:
            with contextlib.suppress(OSError):
                self._sock.send(client_frame(OP_CLOSE, code.to_bytes(2, "big")))
        self._shutdown()

    def _shutdown(self) -> None:
        for watcher in (self._read_watcher, self._write_watcher):
            if watcher is not None:
                watcher.stop()
                watcher.close()
        self._read_watcher = self._write_watcher = None
        if self._sock is not None:
            sock, self._sock = self._sock, None
            if self._out:
                with contextlib.suppress(OSError):  # a close reply still queued: one last try, never blocking
                    sock.send(self._out)
                self._out.clear()
            sock.close()
