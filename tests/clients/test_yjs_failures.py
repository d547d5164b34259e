"""Every way a Yjs connection fails is reported by a typed error that names it.

The misbehaving servers are tiny real asyncio `websockets` servers on loopback, each running
one scripted handler in a background thread of the test process.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import pycrdt
import pytest
from websockets.asyncio.server import ServerConnection, serve

from scenarios.clients import yprotocol as yp
from scenarios.clients.propagation import EditRegistry
from scenarios.clients.yjs import (
    YjsClient,
    YjsClosed,
    YjsConnectError,
    YjsProtocolError,
    YjsRateLimited,
    YjsSyncTimeout,
)

Handler = Callable[[ServerConnection], Awaitable[None]]


@contextmanager
def scripted_server(handler: Handler, **options) -> Iterator[str]:
    """Run `handler` for every connection of a WebSocket server on a free loopback port."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop: list[asyncio.Future] = []
    url: list[str] = []

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0, compression=None, **options) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            url.append(f"ws://127.0.0.1:{port}")
            stop.append(loop.create_future())
            ready.set()
            await stop[0]

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10), "scripted server did not start"
    try:
        yield url[0]
    finally:
        loop.call_soon_threadsafe(stop[0].set_result, None)
        thread.join(10)
        loop.close()


def server_step1() -> bytes:
    return yp.sync_step1(pycrdt.Doc().get_state())


async def sync_then(ws: ServerConnection, after: bytes | str | None) -> None:
    """Sync an empty document with the client, then send `after` and keep the socket open."""
    await ws.send(server_step1())
    async for message in ws:
        frame = yp.decode_frame(message)
        if frame.kind == "sync_step1":
            await ws.send(yp.sync_step2(pycrdt.Doc().get_update(frame.payload)))
            if after is not None:
                await ws.send(after)
    # the client closed


def test_garbage_before_sync_is_a_protocol_error() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send(b"\x07\x01\x02")  # message type 7 does not exist
        await ws.wait_closed()

    with scripted_server(handler) as url:
        client = YjsClient(url, "doc", registry=EditRegistry(), sync_timeout=5)
        with pytest.raises(YjsProtocolError, match="unknown message type 7"):
            client.connect()


def test_truncated_frame_is_a_protocol_error() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send(b"\x00\x00\x20\x01")  # SyncStep1 announcing 32 bytes, carrying 1
        await ws.wait_closed()

    with scripted_server(handler) as url, pytest.raises(YjsProtocolError, match="runs past the end"):
        YjsClient(url, "doc", registry=EditRegistry(), sync_timeout=5).connect()


@pytest.mark.parametrize(
    ("update", "reason"),
    [
        (b"\xff\xff\xff", "unreadable update: varUint at byte 0 is cut short"),
        (b"\x01\x01\x05\x00\xee\x01\x02", "update pycrdt rejects"),
    ],
)
def test_garbage_update_after_sync_fails_the_client_and_the_next_call(update: bytes, reason: str) -> None:
    with scripted_server(lambda ws: sync_then(ws, yp.update_frame(update))) as url:
        client = YjsClient(url, "doc", registry=EditRegistry(), sync_timeout=5)
        client.connect()
        try:
            with pytest.raises(YjsProtocolError, match=reason):
                client.wait_for(lambda c: False, timeout=5, what="never")
            assert isinstance(client.failure, YjsProtocolError)
            with pytest.raises(YjsProtocolError):
                client.insert(0, "x")
        finally:
            client.close()


def test_text_frame_is_a_protocol_error() -> None:
    with scripted_server(lambda ws: sync_then(ws, "hello")) as url:
        client = YjsClient(url, "doc", registry=EditRegistry(), sync_timeout=5)
        client.connect()
        try:
            with pytest.raises(YjsProtocolError, match="text frame"):
                client.wait_for(lambda c: False, timeout=5, what="never")
        finally:
            client.close()


def test_server_that_never_sends_sync_step1_times_out() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.wait_closed()

    with scripted_server(handler) as url:
        patient = YjsClient(url, "doc", registry=EditRegistry(), sync_timeout=0.5, eager=False)
        with pytest.raises(YjsSyncTimeout, match="no SyncStep1"):
            patient.connect()
        eager = YjsClient(url, "doc", registry=EditRegistry(), sync_timeout=0.5)  # the default, as the browser
        with pytest.raises(YjsSyncTimeout, match="no SyncStep2 in answer to our SyncStep1 sent on open"):
            eager.connect()
        assert eager.frames_sent["sync_step1"] == 1 and eager.frames_sent["awareness"] == 1


def test_server_that_never_answers_our_sync_step1_times_out_on_step2() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send(server_step1())
        await ws.wait_closed()

    with scripted_server(handler) as url:
        client = YjsClient(url, "doc", registry=EditRegistry(), sync_timeout=0.5)
        with pytest.raises(YjsSyncTimeout, match="no SyncStep2"):
            client.connect()
        assert client.frames_sent["sync_step1"] == 1 and client.frames_sent["sync_step2"] == 1


def test_close_1008_is_rate_limited() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.close(1008, "Rate limit exceeded")

    with scripted_server(handler) as url:
        client = YjsClient(url, "doc", registry=EditRegistry(), sync_timeout=5)
        with pytest.raises(YjsRateLimited, match="1008") as caught:
            client.connect()
        assert caught.value.code == 1008 and caught.value.reason == "Rate limit exceeded"


def test_other_close_after_sync_is_reported_with_its_code() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send(server_step1())
        async for message in ws:
            frame = yp.decode_frame(message)
            if frame.kind == "sync_step1":
                await ws.send(yp.sync_step2(b"\x00\x00"))
            elif frame.kind == "update":  # sent only after connect() returned: the client is synced
                await ws.close(1011, "internal error")

    with scripted_server(handler) as url:
        client = YjsClient(url, "doc", registry=EditRegistry(), sync_timeout=5)
        client.connect()
        client.insert(0, "x")  # closing on the eager awareness frame raced connect()'s own sync
        with pytest.raises(YjsClosed, match="1011") as caught:
            client.wait_for(lambda c: False, timeout=5, what="never")
        assert not isinstance(caught.value, YjsRateLimited)
        assert caught.value.code == 1011
        client.close()


def test_refused_port_is_a_connect_error() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(YjsConnectError, match="cannot connect"):
        YjsClient(f"ws://127.0.0.1:{port}", "doc", registry=EditRegistry()).connect()


def test_source_address_is_what_the_server_sees() -> None:
    seen: list[str] = []

    async def handler(ws: ServerConnection) -> None:
        seen.append(ws.remote_address[0])
        await sync_then(ws, None)

    with scripted_server(handler) as url:
        for address in ("127.0.0.2", "127.0.0.3"):
            with YjsClient(url, "doc", registry=EditRegistry(), source_address=address):
                pass
    assert seen == ["127.0.0.2", "127.0.0.3"]


def test_a_non_websocket_url_is_a_connect_error_naming_it() -> None:
    with pytest.raises(YjsConnectError, match=re.escape("http://127.0.0.1:9/doc: WebSocket handshake failed")):
        YjsClient("http://127.0.0.1:9", "doc", registry=EditRegistry()).connect()


def test_an_http_server_refusing_the_upgrade_is_a_connect_error() -> None:
    async def handler(ws: ServerConnection) -> None:  # never reached
        await ws.wait_closed()

    def refuse(connection, request):  # answers the upgrade request with a plain 403
        return connection.respond(403, "forbidden\n")

    with scripted_server(handler, process_request=refuse) as url, pytest.raises(YjsConnectError, match="HTTP 403"):
        YjsClient(url, "doc", registry=EditRegistry()).connect()
