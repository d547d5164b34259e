"""A small, test-only Yjs client (websockets' sync client + pycrdt) that records what it saw.

    >>> with YjsTestClient(twin.yjs_url, "sess1:main.py") as alice:
    ...     alice.sync()                      # waits for the server's SyncStep1 first
    ...     alice.insert(0, "hello")          # local edit, sent as one Update frame
    ...     alice.wait_for(lambda: alice.echoes == 1)

It decodes frames with pycrdt's own helpers, not with the twin's parser, so a bug in the
twin's wire format cannot hide behind the same bug here. Every frame it sends is counted
(`frames_sent`, `updates_sent`, `sync_step1_sent`) so tests can predict metrics exactly.
The production client lives in scenarios/; this one only has to be obviously right.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from pycrdt import (
    Decoder,
    Doc,
    Text,
    YMessageType,
    YSyncMessageType,
    create_awareness_message,
    create_sync_message,
    create_update_message,
    read_message,
    write_var_uint,
)
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

TEXT = "codesync"


def unique_document(prefix: str = "yjs") -> str:
    """A document name no other test uses: `<fake session id>:<path>`, as CodeSync names them."""
    return f"c{uuid.uuid4().hex[:12]}:{prefix}/main.py"


def open_socket(base_url: str, document: str, source_ip: str | None = None, timeout: float = 5.0) -> ClientConnection:
    """A raw WebSocket to a document, with websockets' options set explicitly (field notes)."""
    kwargs: dict[str, Any] = {}
    if source_ip:
        kwargs["source_address"] = (source_ip, 0)
    return connect(
        f"{base_url}/{document}",
        compression=None,
        proxy=None,
        max_size=None,
        open_timeout=timeout,
        close_timeout=2,
        ping_interval=None,
        legacy=True,
        **kwargs,
    )


def sync_step2(update: bytes) -> bytes:
    """A SyncStep2 frame carrying `update` (pycrdt only builds it as a reply to a SyncStep1)."""
    return bytes([YMessageType.SYNC, YSyncMessageType.SYNC_STEP2]) + _framed(update)


def encode_awareness(entries: list[tuple[int, int, Any]]) -> bytes:
    """An awareness update payload: (client id, clock, state) triples, state None = removed."""
    out = [write_var_uint(len(entries))]
    for client_id, clock, state in entries:
        text = json.dumps(state, separators=(",", ":")).encode()
        out += [write_var_uint(client_id), write_var_uint(clock), write_var_uint(len(text)), text]
    return b"".join(out)


def decode_awareness(payload: bytes) -> list[tuple[int, int, Any]]:
    decoder = Decoder(payload)
    count = decoder.read_var_uint()
    entries = []
    for _ in range(count):
        client_id = decoder.read_var_uint()
        clock = decoder.read_var_uint()
        entries.append((client_id, clock, json.loads(decoder.read_var_string())))
    return entries


class YjsTestClient:
    """One editor of one document; every received frame is applied and recorded."""

    def __init__(self, base_url: str, document: str, *, source_ip: str | None = None, timeout: float = 5.0) -> None:
        self.document = document
        self.timeout = timeout
        self.ws = open_socket(base_url, document, source_ip, timeout)
        self.doc = Doc()
        self.text = self.doc.get(TEXT, type=Text)
        self.kinds: list[str] = []  # "step1", "step2", "update", "awareness" in arrival order
        self.updates_received: list[bytes] = []
        self.sent_updates: set[bytes] = set()
        self.echoes = 0
        self.awareness: dict[int, Any] = {}
        self.awareness_seen: dict[int, Any] = {}  # last non-null state of every client ever seen
        self.awareness_frames = 0
        self.frames_sent = 0
        self.updates_sent = 0
        self.sync_step1_sent = 0
        self.synced = False

    # -- context manager ------------------------------------------------------------------
    def __enter__(self) -> YjsTestClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.ws.close()

    # -- sending --------------------------------------------------------------------------
    def send(self, frame: bytes | str) -> None:
        self.ws.send(frame)
        self.frames_sent += 1

    def send_sync_step1(self) -> None:
        self.send(create_sync_message(self.doc))
        self.sync_step1_sent += 1

    def insert(self, index: int, chunk: str) -> bytes:
        """Edit locally and send the edit as one Update frame; returns the update."""
        before = self.doc.get_state()
        self.text.insert(index, chunk)
        update = self.doc.get_update(before)
        self.sent_updates.add(update)
        self.send(create_update_message(update))
        self.updates_sent += 1
        return update

    def set_awareness(self, client_id: int, clock: int, state: Any) -> None:
        self.send(create_awareness_message(encode_awareness([(client_id, clock, state)])))

    # -- receiving ------------------------------------------------------------------------
    def receive(self, timeout: float | None = None) -> str:
        """Read one frame, apply it, and say what it was."""
        frame = self.ws.recv(timeout=self.timeout if timeout is None else timeout)
        assert isinstance(frame, bytes), f"server sent a text frame: {frame!r}"
        if frame[0] == YMessageType.SYNC:
            sub, payload = frame[1], read_message(frame[2:])
            if sub == YSyncMessageType.SYNC_STEP1:
                kind = "step1"
                self.send(sync_step2(self.doc.get_update(payload)))
            elif sub == YSyncMessageType.SYNC_STEP2:
                kind = "step2"
                self.doc.apply_update(payload)
                self.synced = True
            else:
                kind = "update"
                self.updates_received.append(payload)
                if payload in self.sent_updates:
                    self.echoes += 1
                self.doc.apply_update(payload)
        elif frame[0] == YMessageType.AWARENESS:
            kind = "awareness"
            self.awareness_frames += 1
            for client_id, _clock, state in decode_awareness(read_message(frame[1:])):
                if state is None:
                    self.awareness.pop(client_id, None)
                else:
                    self.awareness[client_id] = state
                    self.awareness_seen[client_id] = state
        else:
            raise AssertionError(f"unknown message type {frame[0]} in {frame[:16]!r}")
        self.kinds.append(kind)
        return kind

    def wait_for(self, condition: Callable[[], bool], timeout: float | None = None, what: str = "condition") -> None:
        """Receive and apply frames until `condition()` holds; fail the test at the deadline."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not condition():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {what} on {self.document} (seen {self.kinds})")
            try:
                self.receive(timeout=left)
            except TimeoutError:
                continue

    def sync(self) -> None:
        """The handshake a careful client does: wait for the server's SyncStep1, then send ours."""
        self.wait_for(lambda: "step1" in self.kinds, what="server SyncStep1")
        self.send_sync_step1()
        self.wait_for(lambda: self.synced, what="SyncStep2")

    def closed_with(self, timeout: float | None = None) -> int | None:
        """Read until the server closes the socket; returns the close code."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while time.monotonic() < deadline:
            try:
                self.receive(timeout=max(0.01, deadline - time.monotonic()))
            except ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd else None
            except TimeoutError:
                break
        raise AssertionError(f"server did not close {self.document} within the timeout")

    @property
    def content(self) -> str:
        return str(self.text)


def _framed(payload: bytes) -> bytes:
    return write_var_uint(len(payload)) + payload
