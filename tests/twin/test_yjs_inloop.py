"""Yjs server behaviour that needs settings the CLI does not expose (a short ping interval,
a small send backlog): the real app, store and limiter served in the test's own event loop.

    ping: a peer that never answers pings is dropped after about 1.5 ping intervals.
    backlog: a peer that stops reading is cut off, and the others keep being served.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

from aiohttp import web
from pycrdt import Doc, Text, create_sync_message, create_update_message, read_message
from websockets.asyncio.client import connect

from twin.config import TwinConfig
from twin.context import ProcessContext
from twin.faults import ActiveFaults
from twin.metrics import TwinMetrics
from twin.ratelimit import open_limiter
from twin.storage import open_store
from twin.yjs import connection
from twin.yjs.server import build_yjs_app


@asynccontextmanager
async def yjs_server(tmp_path: Path, **overrides: object) -> AsyncIterator[tuple[str, ProcessContext]]:
    """The Yjs app on a free loopback port with SQLite storage; yields (ws base URL, context)."""
    config = replace(TwinConfig(), yjs_port=0, sqlite_path=tmp_path / "yjs.sqlite3", **overrides)
    metrics = TwinMetrics("yjs", ActiveFaults())
    store = await open_store(config, metrics)
    limiter = await open_limiter(config)
    ctx = ProcessContext(config, metrics, store, limiter)
    runner = web.AppRunner(build_yjs_app(ctx), access_log=None, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"ws://127.0.0.1:{port}", ctx
    finally:
        await runner.cleanup()
        await store.close()
        await limiter.close()


def gauge(ctx: ProcessContext) -> float | None:
    return ctx.metrics.registry.get_sample_value("codesync_websocket_connections_active", {"type": "yjs"})


async def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def raw_upgrade(port: int, path: str, rcvbuf: int | None = None) -> socket.socket:
    """A WebSocket handshake by hand, leaving a socket the test can refuse to read from."""
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /{path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    await loop.sock_sendall(sock, request.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += await loop.sock_recv(sock, 1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def test_a_peer_that_never_answers_pings_is_dropped(tmp_path):
    async def scenario() -> None:
        async with yjs_server(tmp_path, yjs_ping_interval_s=0.3) as (url, ctx):
            port = int(url.rsplit(":", 1)[1])
            # A well-behaved client (websockets answers pings) stays connected past several pings.
            async with connect(f"{url}/cping:a.py", compression=None, proxy=None, ping_interval=None) as good:
                await good.recv()
                silent = await raw_upgrade(port, "cping:a.py")
                try:
                    await wait_until(lambda: gauge(ctx) == 2, 2, "two admitted sockets")
                    started = time.monotonic()
                    await wait_until(lambda: gauge(ctx) == 1, 5, "the silent peer to be dropped")
                    assert time.monotonic() - started < 2.5
                    await asyncio.sleep(0.9)  # three more ping intervals
                    await good.send(create_sync_message(Doc()))
                    reply = await asyncio.wait_for(good.recv(), 2)
                    assert reply[:2] == b"\x00\x01"
                    assert gauge(ctx) == 1
                finally:
                    silent.close()

    asyncio.run(scenario())


def test_a_peer_that_stops_reading_is_cut_off_and_the_others_keep_up(tmp_path, monkeypatch):
    monkeypatch.setattr(connection, "MAX_BACKLOG_BYTES", 256 * 1024)

    async def scenario() -> None:
        async with yjs_server(tmp_path) as (url, ctx):
            port = int(url.rsplit(":", 1)[1])
            stuck = await raw_upgrade(port, "cstuck:a.py", rcvbuf=4096)
            try:
                async with connect(
                    f"{url}/cstuck:a.py", compression=None, proxy=None, ping_interval=None, max_size=None
                ) as writer:
                    await writer.recv()
                    await wait_until(lambda: gauge(ctx) == 2, 2, "both admitted")
                    doc = Doc()
                    text = doc.get("codesync", type=Text)
                    chunk = "x" * 32 * 1024
                    echoes = 0
                    for _ in range(300):  # ~10 MB through the room: far past kernel buffers + backlog
                        before = doc.get_state()
                        text.insert(0, chunk)
                        await writer.send(create_update_message(doc.get_update(before)))
                        frame = await asyncio.wait_for(writer.recv(), 5)  # the writer's own echo, promptly
                        assert len(read_message(frame[2:])) > len(chunk)
                        echoes += 1
                        if gauge(ctx) == 1:
                            break
                    await wait_until(lambda: gauge(ctx) == 1, 5, "the stuck peer to be cut off")
                    assert echoes < 300
            finally:
                stuck.close()

    asyncio.run(scenario())
