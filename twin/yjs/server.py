"""CodeSync's Yjs process: a y-websocket v1 server where any path is a document name.

    >>> app = build_yjs_app(ctx)          # served on the Yjs port by twin.server.TwinServer
    $ python -c "import websockets.sync.client as c; c.connect('ws://127.0.0.1:4001/sess1:main.py')"

Per connection, as upstream y-websocket does it plus CodeSync's admission: upgrade, check the
per-IP rate limit (refused: close 1008), load the document on first use, send SyncStep1 and the
current awareness states, then answer SyncStep1 with SyncStep2, apply every update and send what
it changed to all the document's connections (the sender too; Yjs' 'update' event, so an update
that brings nothing new is neither echoed nor counted), relay awareness, and on close remove the
client's awareness states. A frame that is not the protocol closes that socket only (1003 for
text, 1002 for the rest); the room and the other clients carry on. The document's stored
state is loaded asynchronously (twin/yjs/rooms.py): a client that syncs first receives it
afterwards as an ordinary Update, as from CodeSync.

Fault `yjs-late-listen=MS`: the server starts listening to a connection only MS ms after it
opened (as a server that awaits a check before it registers its message handler), and what
the client sent meanwhile, the browser's SyncStep1 and awareness, is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from urllib.parse import unquote

from aiohttp import WSCloseCode, WSMsgType, web

from twin.context import ProcessContext
from twin.yjs.connection import Connection
from twin.yjs.http import metrics_response, upgrade_required
from twin.yjs.protocol import (
    AWARENESS,
    EMPTY_UPDATE,
    SYNC_STEP1,
    awareness_message,
    parse_frame,
    sync_step1_message,
    sync_step2_message,
    update_message,
)
from twin.yjs.rooms import Room, RoomRegistry

log = logging.getLogger("twin.yjs")

CHANNEL = "yjs"
# How long a close handshake may wait for the client's close frame.
CLOSE_TIMEOUT_S = 1.0

ROOMS = web.AppKey("yjs_rooms", RoomRegistry)
CONTEXT = web.AppKey("yjs_context", ProcessContext)
SOCKETS = web.AppKey("yjs_sockets", set)

_NOT_CANCELLATION = (asyncio.CancelledError, KeyboardInterrupt, SystemExit, GeneratorExit)


def build_yjs_app(ctx: ProcessContext) -> web.Application:
    """The aiohttp application of the Yjs port; its shutdown closes sockets (1001) and flushes."""
    ctx.metrics.initialise_channel(CHANNEL)
    app = web.Application(client_max_size=1024)
    app[CONTEXT] = ctx
    app[ROOMS] = RoomRegistry(ctx)
    app[SOCKETS] = set()
    app.router.add_route("GET", "/{document:.*}", _handle)
    app.on_shutdown.append(_on_shutdown)
    return app


def document_name(request: web.Request) -> str:
    """The document a request addresses: its path without the leading '/', URL-decoded."""
    raw = request.raw_path.split("?", 1)[0]
    return unquote(raw[1:] if raw.startswith("/") else raw)


async def _handle(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    ws = web.WebSocketResponse(
        heartbeat=ctx.config.yjs_ping_interval_s or None,
        max_msg_size=ctx.config.max_ws_message_bytes,
        compress=False,
        timeout=CLOSE_TIMEOUT_S,
        decode_text=False,
    )
    if not ws.can_prepare(request).ok:
        if request.path == "/metrics":
            return metrics_response(request, ctx)
        return upgrade_required()
    await ws.prepare(request)
    sockets = request.app[SOCKETS]
    sockets.add(ws)
    try:
        await _session(request, ws, ctx)
    finally:
        sockets.discard(ws)
    return ws


async def _admit(ws: web.WebSocketResponse, ctx: ProcessContext, ip: str) -> bool:
    """CodeSync's Yjs admission: 100 connections per window per client IP, else close 1008."""
    limits = ctx.config.rate_limits
    try:
        decision = await ctx.limiter.hit(f"ws:yjs:{ip}", limits.yjs_connections_max, limits.window_s)
    except Exception as err:
        log.error("Yjs rate-limit check failed for %s: %s", ip, err)
        await ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"rate limiter unavailable")
        return False
    if not decision.allowed:
        ctx.metrics.rate_limited("WS", ip)
        await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"Rate limit exceeded")
        return False
    return True


async def _session(request: web.Request, ws: web.WebSocketResponse, ctx: ProcessContext) -> None:
    ip = request.remote or "unknown"
    if not await _admit(ws, ctx, ip):
        return
    ctx.metrics.ws_opened(CHANNEL)
    rooms = request.app[ROOMS]
    conn = Connection(ws, request.transport, ip)
    room: Room | None = None
    try:
        faults = ctx.config.faults
        if faults.active("yjs-late-listen") and not await _drop_early_frames(ws, faults.param("yjs-late-listen")):
            return
        try:
            room = await rooms.join(document_name(request), conn)
        except Exception as err:
            log.error("loading Yjs document %r failed: %s", document_name(request), err)
            await ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"document could not be loaded")
            return
        conn.send(sync_step1_message(room.doc.get_state()))
        if len(room.awareness):
            conn.send(awareness_message(room.awareness.encode_all()))
        await _read_loop(ws, ctx, room, conn)
    finally:
        await conn.aclose()
        if room is not None:
            await _depart(rooms, room, conn)
        with contextlib.suppress(Exception):
            await ws.close(code=WSCloseCode.GOING_AWAY)
        ctx.metrics.ws_closed(CHANNEL)


async def _drop_early_frames(ws: web.WebSocketResponse, delay_ms: float) -> bool:
    """The late-listen fault: read and drop every frame for `delay_ms`; False if the socket closed."""
    loop = asyncio.get_running_loop()
    until = loop.time() + delay_ms / 1000.0
    while (left := until - loop.time()) > 0:
        try:
            msg = await ws.receive(timeout=left)
        except TimeoutError:
            break
        if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
            return False
        log.debug("Yjs frame dropped: not listening yet (yjs-late-listen)")
    return True


async def _refuse(ws: web.WebSocketResponse, ctx: ProcessContext, code: int, message: bytes) -> None:
    """Close a socket that sent what is not the protocol: `code` (1002/1003), or 1011 under the
    yjs-garbage-crash fault (the handler failing on the input rather than refusing it)."""
    if ctx.config.faults.active("yjs-garbage-crash"):
        code, message = WSCloseCode.INTERNAL_ERROR, b"internal error"
    await ws.close(code=code, message=message)


async def _read_loop(ws: web.WebSocketResponse, ctx: ProcessContext, room: Room, conn: Connection) -> None:
    """Handle frames until the socket closes or a frame breaks the protocol."""
    metrics = ctx.metrics
    while True:
        msg = await ws.receive()
        kind = msg.type
        if kind is WSMsgType.BINARY:
            metrics.ws_message(CHANNEL, "inbound")
            try:
                _handle_frame(room, conn, msg.data)
            except _NOT_CANCELLATION:
                raise
            except BaseException as err:  # ProtocolError, pycrdt's ValueError, or a pyo3 panic
                log.info("closing Yjs client %s on %r: %s", conn.ip, room.name, err)
                await _refuse(ws, ctx, WSCloseCode.PROTOCOL_ERROR, b"invalid y-websocket message")
                return
        elif kind is WSMsgType.TEXT:
            metrics.ws_message(CHANNEL, "inbound")
            await _refuse(ws, ctx, WSCloseCode.UNSUPPORTED_DATA, b"binary frames only")
            return
        else:  # CLOSE, CLOSING, CLOSED, ERROR (e.g. a frame over max_msg_size)
            return


def _handle_frame(room: Room, conn: Connection, data: bytes) -> None:
    """Dispatch one binary frame; raises ProtocolError or ValueError for garbage."""
    kind, payload = parse_frame(data)
    if kind == SYNC_STEP1:
        started = time.perf_counter()
        conn.send(sync_step2_message(room.doc.get_update(payload)))
        room.ctx.metrics.yjs_synced(time.perf_counter() - started)
    elif kind == AWARENESS:
        change = room.awareness.apply(payload)
        if change.added:
            conn.awareness_ids.update(change.added)
        if change.removed:
            conn.awareness_ids.difference_update(change.removed)
        if change.added or change.updated or change.removed:
            room.broadcast(awareness_message(room.awareness.encode(change.changed)))
    elif payload != EMPTY_UPDATE:  # SyncStep2 or Update; an empty one changes nothing
        for change in room.apply_update(payload):
            room.broadcast(update_message(change))


async def _depart(rooms: RoomRegistry, room: Room, conn: Connection) -> None:
    """Tell the others this client's awareness is gone, then leave (the last one out flushes)."""
    gone = room.awareness.remove(conn.awareness_ids)
    if gone:
        room.broadcast(awareness_message(room.awareness.encode(gone)))  # `conn` is closed: skipped
    await rooms.leave(room, conn)


async def _on_shutdown(app: web.Application) -> None:
    """Close every Yjs socket with 1001 (bounded), then write every document still dirty."""
    sockets = list(app[SOCKETS])
    if sockets:
        closes = (ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown") for ws in sockets)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*closes, return_exceptions=True), timeout=CLOSE_TIMEOUT_S + 0.5)
    await app[ROOMS].flush_all()
