"""Hostile inputs, each sent once, with what the target answered.

    >>> probes = send_hostile(target, session_client, session_id, path)
    >>> [(p.name, p.answer, p.acceptable) for p in probes]
    [('malformed JSON', '400 VALIDATION_ERROR', True), ('body over the limit', '413 PAYLOAD_TOO_LARGE', True), ...]

What a server must do with garbage: refuse it with its documented error or close the socket,
never crash, never answer 5xx, never let it through to stored data. Acceptable answers per
probe are listed next to it; what happens to the target afterwards (still answering, data
intact) is the check's business, not this module's. A 5xx is blamed on the input only when
the input reproduces it and well-formed requests to the route are served (a target failing
every request, e.g. the twin's error-burst, is reported as failing, not as harmed).

The WebSocket probes talk raw `websockets` on purpose: the project's clients refuse to send
malformed frames, which is what they are for.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.sync.client import connect as ws_connect

from codesync_load.errors import is_server_error
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


REPEATS = 5  # after a 5xx: the same input again this often, then as many well-formed requests


@dataclass
class Probe:
    name: str
    answer: str
    acceptable: bool
    expected: str
    server_error: str = ""  # set when the target answered 5xx whatever the input: it failed, it was not harmed


Answer = tuple[int, str]  # (status, error code or 'closed')


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


# A close code that says the server failed, not that it refused the input: 1011 "internal error".
CRASH_CLOSE = 1011


def ws_refused(outcome: str) -> bool:
    """A WebSocket probe's outcome is harmless: the frame ignored, or the socket closed with any
    code but 1011 (the server's own failure on the input, a crash the check promises against)."""
    return outcome == "ignored" or (outcome.startswith("closed") and outcome != f"closed {CRASH_CLOSE}")


def _text(answer: Answer) -> str:
    return f"{answer[0]} {answer[1]}"


def _rest_probe(
    client: RestClient,
    name: str,
    call: tuple[str, str, str],
    hostile: bytes,
    control: tuple[str, bytes],
    acceptable: Callable[[Answer], bool],
    expected: str,
) -> Probe:
    """Send `hostile` as `call` (method, path, route); after a 5xx, tell who is to blame.

    A 5xx is the symptom only when the input causes it: the same input must get it again
    (REPEATS more sends) while well-formed requests to the same route (`control`: path, body)
    are served. An input answered as the contract says on a repeat, or a well-formed request
    answered 5xx too, means the target fails whatever it is sent: `server_error` says so.
    """
    method, path, route = call
    answers = [_raw_call(client, method, path, hostile)]
    if not is_server_error(answers[0][0]):
        return Probe(name, _text(answers[0]), acceptable(answers[0]), expected)
    answers += [_raw_call(client, method, path, hostile) for _ in range(REPEATS)]
    failed = [a for a in answers if is_server_error(a[0])]
    served = [a for a in answers if not is_server_error(a[0])]
    sends = f"{len(failed)} of {len(answers)} sends"
    if served:
        wrong = [a for a in served if not acceptable(a)]
        if wrong:  # the input got through when the target was not failing: the symptom
            return Probe(name, f"{_text(wrong[0])} ({_text(failed[0])} to {sends})", False, expected)
        return Probe(
            name,
            f"{_text(failed[0])} to {sends}, {_text(served[0])} to the others",
            False,
            expected,
            server_error=f"{_text(failed[0])} on {method} {route} to {sends} of the same input, "
            f"{_text(served[0])} to the others",
        )
    controls = [_raw_call(client, method, control[0], control[1]) for _ in range(REPEATS)]
    broken = [a for a in controls if is_server_error(a[0])]
    if broken:
        return Probe(
            name,
            f"{_text(failed[0])} to {sends}; well-formed: {_text(broken[0])}",
            False,
            expected,
            server_error=f"{_text(failed[0])} on {method} {route} to every send of the input and to {len(broken)} of "
            f"{len(controls)} well-formed requests",
        )
    served_as = ", ".join(sorted({str(status) for status, _ in controls}))
    return Probe(name, f"{_text(failed[0])} to {sends}; well-formed requests answered {served_as}", False, expected)


def send_hostile(target: LiveTarget, client: RestClient, session_id: str, file_path: str, document: str) -> list[Probe]:
    """Every hostile input once; `file_path`/`document` are what the huge body and the garbage aim at."""
    probes = [
        _rest_probe(
            client,
            "malformed JSON (POST " + SESSIONS + ")",
            ("POST", "/api/sessions", SESSIONS),
            b'{"name": "broken", "language": ',
            ("/api/sessions", json.dumps({"name": "control", "language": "python", "visibility": "PUBLIC"}).encode()),
            lambda answer: answer == (400, "VALIDATION_ERROR"),
            "400 VALIDATION_ERROR",
        )
    ]
    huge = json.dumps({"content": "x" * HUGE_BODY_BYTES}).encode()
    content = RestClient.file_content_path(session_id, file_path)
    probes.append(
        _rest_probe(
            client,
            f"body of {len(huge) >> 20} MiB (PUT {FILE_CONTENT})",
            ("PUT", content, FILE_CONTENT),
            huge,
            (RestClient.file_content_path(session_id, file_path + ".control"), b'{"content": "control"}'),
            lambda answer: answer[0] in (0, 413) or (400 <= answer[0] < 500 and answer[1] != "no envelope"),
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
            Probe(f"Yjs {name}", outcome, ws_refused(outcome), "the socket closed (not 1011), or the frame ignored")
        )
    sio_url = target.api_url.replace("http", "ws", 1).rstrip("/") + "/socket.io/?EIO=4&transport=websocket"
    for name, frames in (
        ("Socket.IO garbage packet", ['42["session:join", {unterminated', "\x00\xff"]),
        ("Socket.IO binary garbage", [os.urandom(48)]),
    ):
        outcome = _ws_probe(sio_url, frames, wait_first=True, address=None)
        probes.append(Probe(name, outcome, ws_refused(outcome), "the socket closed (not 1011), or the packet ignored"))
    return probes
