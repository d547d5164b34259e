"""One admitted Yjs WebSocket with its own send queue, so no client can stall a broadcast.

    >>> conn = Connection(ws, transport, "127.0.0.1")
    >>> conn.send(frame)            # never blocks: queued, written by the connection's task
    >>> await conn.aclose()         # stop the writer; the socket is closed by its handler

Broadcasting awaits nobody: `send` appends to a deque and wakes the writer task, which
drains the whole deque per wake-up (so bursts cost one task switch per connection, not one
per frame). A client that stops reading fills its queue; past `MAX_BACKLOG_BYTES` it is cut
off (transport aborted) instead of growing the server's memory or delaying the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

from aiohttp import web

log = logging.getLogger("twin.yjs")

# Bytes queued for one client before it counts as stuck; well above any sane burst.
MAX_BACKLOG_BYTES = 32 * 1024 * 1024


class Connection:
    """Send side of one WebSocket plus the awareness client ids it controls."""

    __slots__ = (
        "_closer",
        "_queue",
        "_queued_bytes",
        "_wakeup",
        "_writer",
        "awareness_ids",
        "closed",
        "ip",
        "transport",
        "ws",
    )

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.BaseTransport | None, ip: str) -> None:
        self.ws = ws
        self.transport = transport
        self.ip = ip
        self.awareness_ids: set[int] = set()
        self.closed = False
        self._queue: deque[bytes] = deque()
        self._queued_bytes = 0
        self._wakeup = asyncio.Event()
        self._writer = asyncio.create_task(self._write_loop(), name=f"yjs-writer-{ip}")
        self._closer: asyncio.Task[bool] | None = None

    def close_soon(self, code: int, message: bytes) -> None:
        """Start a close handshake from outside the connection's handler (its read loop then ends)."""
        if self.closed or self._closer is not None:
            return
        self._closer = asyncio.create_task(self.ws.close(code=code, message=message), name=f"yjs-close-{self.ip}")

    def send(self, frame: bytes) -> None:
        """Queue a frame for this client; a client that let too much pile up is cut off."""
        if self.closed:
            return
        self._queue.append(frame)
        self._queued_bytes += len(frame)
        if self._queued_bytes > MAX_BACKLOG_BYTES:
            log.warning("yjs client %s stopped reading (%d bytes queued); closing it", self.ip, self._queued_bytes)
            self.abort()
            return
        self._wakeup.set()

    def abort(self) -> None:
        """Drop the connection now, without a close handshake (the client is not reading)."""
        self.closed = True
        self._queue.clear()
        self._queued_bytes = 0
        self._writer.cancel()
        if self.transport is not None:
            self.transport.abort()

    async def _write_loop(self) -> None:
        queue = self._queue
        send = self.ws.send_bytes
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                while queue:
                    frame = queue.popleft()
                    self._queued_bytes -= len(frame)
                    await send(frame)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # the peer went away while we wrote: its handler sees the close
            log.debug("yjs send to %s failed: %s", self.ip, err)
            self.closed = True
            queue.clear()

    async def aclose(self) -> None:
        """Stop the writer; frames still queued are dropped (the socket is closing anyway)."""
        self.closed = True
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._writer
