"""Hostile inputs, each sent once, with what the target answered.

    >>> probes = send_hostile(target, session_client, session_id, path)
    >>> [(p.name, p.answer, p.acceptable) for p in probes]
    [('malformed JSON', '400 VALIDATION_ERROR', True), ('body over the limit', '413 PAYLOAD_TOO_LARGE', True), ...]

What a server must do with garbage: refuse it with its documented error or close the socket,
never crash, never answer 5xx, never let it through to stored data. Acceptable answers per
probe are listed next to it; what happens to the target afterwards (still answering, data
intact) is the check's business, not this module's.

The WebSocket probes talk raw `websockets` on purpose: the project's clients refuse to send
malformed frames, which is what they are for.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
from dataclasses import dataclass
from typing import Any

from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.sync.client import connect as ws_connect

from scenarios.clients.rest import FILE_CONTENT, SESSIONS, RestClient
from scenarios.clients.transport import TransportError
from verify.live.actors import fresh_loopback
from verify.live.inputs import LiveTarget

HUGE_BODY_BYTES = 11 * 1024 * 1024  # over the twin's 1 MiB and Express's common 10 MB limits
_WS_OPTIONS: dict[str, Any] = {"compression": None, "open_timeout": 5, "close_timeout": 2, "max_size": 2**24}
# As the Yjs client: no proxy from the environment (websockets >= 15), no deprecation noise (>= 16).
_WS_OPTIONS.update(
    {
        name: value
        for name, value in (("proxy", None), ("legacy", True))
        if name in inspect.signature(ws_connect).parameters
    }
)


@dataclass
class Probe:
    name: str
    answer: str
    acceptable: bool
    expected: str


def _raw_call(client: RestClient, method: str, path: str, body: bytes) -> tuple[int, str]:
    """Send `body` as is with the client's cookies and CSRF token; (status, error code or 'closed')."""
    if client.csrf_token is None:
        client.health()
    headers = {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "Cookie": client.cookie_header(),
        "x-csrf-token": client.csrf_token or "",
    }
    try:
        response = client.transport.request(method, client.base_url + path, headers, body)
    except TransportError:
        return 0, "closed"
    try:
        payload = json.loads(response.body)
        code = str(payload["error"]["code"])
    except (ValueError, KeyError, TypeError):
        code = "no envelope"
    return response.status, code


def _ws_probe(url: str, frames: list[bytes | str], wait_first: bool, address: str | None) -> str:
    """Open a WebSocket, optionally wait for the server's first message, send `frames`; the outcome."""
    options = dict(_WS_OPTIONS)
    if address:
        options["source_address"] = (address, 0)
    try:
        ws = ws_connect(url, **options)
    except (OSError, WebSocketException) as err:
        return f"refused ({type(err).__name__})"
    try:
        if wait_first:
            ws.recv(timeout=5)
        for frame in frames:
            ws.send(frame)
        # Answers to garbage: a close, or nothing (the frame ignored); drain for a moment.
        while True:
            ws.recv(timeout=2)
    except ConnectionClosed as err:
        code = err.rcvd.code if err.rcvd is not None else None
        return f"closed {code}" if code is not None else "closed"
    except TimeoutError:
        return "ignored"
    finally:
        with contextlib.suppress(Exception):
            ws.close()


def send_hostile(target: LiveTarget, client: RestClient, session_id: str, file_path: str, document: str) -> list[Probe]:
    """Every hostile input once; `file_path`/`document` are what the huge body and the garbage aim at."""
    probes = []
    status, code = _raw_call(client, "POST", "/api/sessions", b'{"name": "broken", "language": ')
    probes.append(
        Probe(
            "malformed JSON (POST " + SESSIONS + ")",
            f"{status} {code}",
            (status, code) == (400, "VALIDATION_ERROR"),
            "400 VALIDATION_ERROR",
        )
    )
    huge = json.dumps({"content": "x" * HUGE_BODY_BYTES}).encode()
    status, code = _raw_call(client, "PUT", RestClient.file_content_path(session_id, file_path), huge)
    probes.append(
        Probe(
            f"body of {len(huge) >> 20} MiB (PUT {FILE_CONTENT})",
            f"{status} {code}",
            status == 0 or status == 413 or (400 <= status < 500 and code != "no envelope"),
            "413 (or another 4xx envelope), or the connection closed",
        )
    )
    yjs_doc_url = target.yjs_url.rstrip("/") + "/" + document
    address = fresh_loopback()
    garbage = [
        ("random bytes", [os.urandom(64)]),
        ("truncated sync update", [bytes([0, 2, 0xFF, 0xFF, 0xFF, 0x0F, 1, 2])]),
        ("text frame", ["hello, y-websocket"]),
    ]
    for name, frames in garbage:
        outcome = _ws_probe(yjs_doc_url, frames, wait_first=True, address=address)
        probes.append(
            Probe(
                f"Yjs {name}",
                outcome,
                outcome.startswith(("closed", "ignored")),
                "the socket closed, or the frame ignored",
            )
        )
    sio_url = target.api_url.replace("http", "ws", 1).rstrip("/") + "/socket.io/?EIO=4&transport=websocket"
    for name, frames in (
        ("Socket.IO garbage packet", ['42["session:join", {unterminated', "\x00\xff"]),
        ("Socket.IO binary garbage", [os.urandom(48)]),
    ):
        outcome = _ws_probe(sio_url, frames, wait_first=True, address=None)
        probes.append(
            Probe(name, outcome, outcome.startswith(("closed", "ignored")), "the socket closed, or the packet ignored")
        )
    return probes
