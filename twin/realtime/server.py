"""CodeSync's Socket.IO channel (chat and presence) on the API port, path /socket.io.

    >>> app = build_api_app(ctx)
    >>> realtime = attach_socketio(app, ctx)       # also kept as ctx.extras["socketio"]
    >>> realtime.connection_count()
    0

A `session:join` creates no participant row (the invitations do); a disconnect sets
left_at on the rows of the sessions the socket joined, so a collaborator who reconnects
must be made a participant again before it may write (twin.api.access).

What a client sees, as CodeSync's backend does it: the JWT comes in `auth={"token": ...}`
(or the browser's `token` cookie); a bad or missing one is refused with `connect_error
{message}`. The 101st connection of a user inside the rate window is refused the way CodeSync
refuses it: the connection is accepted, then disconnected at once from the server side, so the
client sees `connect` then `disconnect` ("io server disconnect") and no `connect_error`
(`TwinConfig.socketio_refusal = "connect_error"` gives the other shape, for tests that pin
both). Events a refused connection emits meanwhile are dropped. After
`session:join` the others in the room hear `user:joined` and `notification`; chat is stored
and echoed to the whole room, sender included; cursor and typing go to the others only;
every failure comes back to the sender alone as `error {message}`.

Events of one connection are handled in arrival order (`async_handlers=False`), so a client
that emits `session:join` then `chat:message:send` at once gets its echo, as against the
real backend; different connections still run concurrently.

Telemetry, per the metric contract: `websocket_connections_{total,active}{type="socketio"}`
on admit and close, `websocket_messages_total` inbound once per successful join or leave and
outbound once per `chat:message:new` or `message:reaction` broadcast,
`session_participants{session_id}` = room size after every join, leave and disconnect, and
`rate_limit_hits_total{type="WS"}` per refused connection (a refused connection is never
admitted: no connections_total, no gauge).

Fault `socketio-late-handlers=MS`: the server handles a connection's events only MS ms after
its connect, as a server that registers its handlers after an awaited check does; what a
client emits in that gap (the browser's `session:join` right after `connect`) is dropped.
Fault `socketio-late-handlers-some=F`: the same, SOME_LATE_S late, for a fraction F of users
only (a per-user check that misses its cache), so one user's early events prove nothing.
Fault `socketio-drop=S`: each user's first connection is disconnected by the server S s after
its connect (a proxy reload, a failover), so the load model's way back in is exercised.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import socketio
from aiohttp import web
from engineio import packet as eio_packet
from socketio.exceptions import ConnectionRefusedError as Refused

from twin.auth import authenticate_token
from twin.context import ProcessContext
from twin.realtime import payloads
from twin.realtime.handshake import token_from_handshake
from twin.realtime.payloads import PayloadError
from twin.sentry import capture_error

log = logging.getLogger("twin.socketio")

CHANNEL = "socketio"
NAMESPACE = "/"
# Engine.IO's own cap on one packet (Socket.IO's maxHttpBufferSize default, 1e6 bytes).
MAX_PACKET_BYTES = 1_000_000
REFUSAL_CONNECT_WAIT_S = 5.0  # how long a refused connection may take to be connected before its disconnect
SOME_LATE_S = 0.3  # fault socketio-late-handlers-some: how late the unlucky users' handlers come

EventAction = Callable[[str, "Connection", tuple[Any, ...]], Awaitable[None]]


@dataclass
class Connection:
    """One admitted socket: who it is and which session rooms it has joined."""

    user_id: str
    name: str | None
    sessions: set[str] = field(default_factory=set)
    listening_at: float = 0.0  # loop time from which its events are handled (late-handlers fault)


class _OverLimit(Exception):
    """The user's Socket.IO connection budget is spent (refused as `socketio_refusal` says)."""


def room_of(session_id: str) -> str:
    return f"session:{session_id}"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def jsonable(value: Any) -> Any:
    """A store row made safe for Socket.IO's JSON: timestamps as ISO strings, ids as text."""
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


class RealtimeServer:
    """The Socket.IO server of one API process, its connection table and its handlers."""

    def __init__(self, ctx: ProcessContext) -> None:
        self.ctx = ctx
        # CodeSync's `cors` option only shapes response headers; it never refuses a
        # handshake by Origin, and a client without Origin always passes. "*" keeps that.
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp",
            async_handlers=False,
            cors_allowed_origins="*",
            max_http_buffer_size=MAX_PACKET_BYTES,
            logger=False,
            engineio_logger=False,
        )
        self.connections: dict[str, Connection] = {}
        self._refused: set[str] = set()  # accepted only to be disconnected (the rate limit)
        self._tasks: set[asyncio.Task[None]] = set()
        faults = ctx.config.faults
        self._late_handlers_s = (
            faults.param("socketio-late-handlers") / 1000.0 if faults.active("socketio-late-handlers") else 0.0
        )
        some = "socketio-late-handlers-some"
        self._late_some = faults.param(some) if faults.active(some) else 0.0
        self._user_order: dict[str, int] = {}  # socketio-late-handlers-some: the order users were first seen
        self._drop_after_s = faults.param("socketio-drop") if faults.active("socketio-drop") else 0.0
        self._dropped_users: set[str] = set()  # socketio-drop: each user's first connection only
        self._requests: dict[int, web.Request] = {}  # by id(): aiohttp requests are unhashable
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        for event, action in (
            ("session:join", self._join),
            ("session:leave", self._leave),
            ("chat:message:send", self._chat_send),
            ("chat:message:react", self._chat_react),
            ("cursor:update", self._cursor_update),
            ("typing:start", self._typing_start),
            ("typing:stop", self._typing_stop),
        ):
            self.sio.on(event, self._guarded(event, action))

    def attach(self, app: web.Application) -> None:
        """Route /socket.io/ (GET and POST, as Engine.IO needs) through `_handle_http`."""
        app.router.add_route("*", "/socket.io/", self._handle_http)
        app.on_shutdown.append(self._on_shutdown)

    async def _handle_http(self, request: web.Request) -> web.StreamResponse:
        """Engine.IO's handler, with the request remembered while it runs (see `_on_shutdown`)."""
        self._requests[id(request)] = request
        try:
            return await self.sio.handle_request(request)
        finally:
            self._requests.pop(id(request), None)

    def connection_count(self) -> int:
        return len(self.connections)

    def room_size(self, session_id: str) -> int:
        return sum(1 for _ in self.sio.manager.get_participants(NAMESPACE, room_of(session_id)))

    # -- connection lifecycle ---------------------------------------------------------------
    async def _on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        """Authenticate, then rate-limit; raising Refused(message) is the client's connect_error {message}."""
        try:
            connection = await self._admit(environ, auth)
        except _OverLimit:
            if self.ctx.config.socketio_refusal == "connect_error":
                raise Refused("Rate limit exceeded") from None
            self._refused.add(sid)
            self._spawn(self._disconnect_refused(sid))
            return None  # accepted: CONNECT goes out, then the server's DISCONNECT
        except Refused:
            raise
        except Exception as err:
            log.exception("Socket.IO handshake failed")
            capture_error(err)
            raise Refused("Internal error") from None
        late = self._late_handlers_s or (SOME_LATE_S if self._late_for(connection.user_id) else 0.0)
        if late:
            connection.listening_at = asyncio.get_running_loop().time() + late
        self.connections[sid] = connection
        self.ctx.metrics.ws_opened(CHANNEL)
        if self._drop_after_s and connection.user_id not in self._dropped_users:
            self._dropped_users.add(connection.user_id)
            self._spawn(self._drop_later(sid))

    async def _drop_later(self, sid: str) -> None:
        """Fault `socketio-drop`: a server-side disconnect of a healthy connection, once per user;
        the disconnect handler runs as for any disconnect (rooms left, participant left_at)."""
        await asyncio.sleep(self._drop_after_s)
        if sid in self.connections:
            with contextlib.suppress(Exception):
                await self.sio.disconnect(sid)

    def _late_for(self, user_id: str) -> bool:
        """Fault `socketio-late-handlers-some=F`: whether this user's handlers come late. The n-th
        user first seen (from 0) is late when floor((n+1)F) > floor(nF): exactly F of every run of
        users, spread evenly, the same users on every connection, whatever the timing."""
        if not self._late_some:
            return False
        index = self._user_order.setdefault(user_id, len(self._user_order))
        return math.floor((index + 1) * self._late_some) > math.floor(index * self._late_some)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _disconnect_refused(self, sid: str) -> None:
        """CodeSync's refusal: disconnect from the server side as soon as the connect went out.

        python-socketio sends CONNECT after the connect handler returns; this task waits
        (bounded in time, not in loop turns: on a loaded machine a thousand turns passed
        before CONNECT went out, and the refused connection then stayed open) until the
        manager holds the sid as connected, so the client really sees `connect` before
        `disconnect`.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REFUSAL_CONNECT_WAIT_S
        while not self.sio.manager.is_connected(sid, NAMESPACE) and loop.time() < deadline:
            await asyncio.sleep(0.001)
        with contextlib.suppress(Exception):
            await self.sio.disconnect(sid)

    async def _admit(self, environ: dict[str, Any], auth: Any) -> Connection:
        token = token_from_handshake(auth, environ)
        if token is None:
            raise Refused("Authentication error: token required")
        claims = await authenticate_token(self.ctx, token)
        user_id = claims.get("userId") if claims else None
        if not isinstance(user_id, str) or not user_id:
            raise Refused("Authentication error: invalid token")
        user = await self.ctx.store.get_user(user_id)
        if user is None:
            raise Refused("Authentication error: user not found")
        limits = self.ctx.config.rate_limits
        decision = await self.ctx.limiter.hit(
            f"ws:socketio:{user_id}", limits.socketio_connections_max, limits.window_s
        )
        if not decision.allowed:
            self.ctx.metrics.rate_limited("WS", user_id)
            raise _OverLimit()
        return Connection(user_id=user_id, name=user.get("name"))

    async def _on_disconnect(self, sid: str, reason: Any = None) -> None:
        """Leave every joined room: participant row marked left, others told, gauge updated."""
        self._release_long_poll(sid)
        self._refused.discard(sid)
        connection = self.connections.pop(sid, None)
        if connection is None:
            return  # refused at connect: never admitted, never counted
        self.ctx.metrics.ws_closed(CHANNEL)
        for session_id in sorted(connection.sessions):
            try:
                await self.sio.leave_room(sid, room_of(session_id))
                self.ctx.metrics.set_participants(session_id, self.room_size(session_id))
                await self._to_others(sid, session_id, "user:left", self._presence(connection, session_id))
                await self.ctx.store.mark_participant_left(session_id, connection.user_id)
            except Exception as err:  # one room's failure must not keep the others joined
                log.exception("Socket.IO disconnect cleanup failed for session %s", session_id)
                capture_error(err)
        connection.sessions.clear()

    def _release_long_poll(self, sid: str) -> None:
        """Answer a held long-poll GET with CLOSE, as engine.io (Node) does on close.

        python-engineio only aborts a polling socket when the client's CLOSE arrives, so
        the GET it holds would hang until the ping timeout (~30 s) and the client, waiting
        for it, with it. Websocket sockets need nothing: their reader ends on close.
        """
        with contextlib.suppress(Exception):
            eio_sid = self.sio.manager.eio_sid_from_sid(sid, NAMESPACE)
            socket = self.sio.eio.sockets.get(eio_sid)
            if socket is not None and not socket.upgraded:
                socket.queue.put_nowait(eio_packet.Packet(eio_packet.CLOSE))

    async def _on_shutdown(self, app: web.Application) -> None:
        """Disconnect every client and end every Socket.IO request, well inside the stop bound.

        aiohttp runs this after it has stopped reading from open connections, so a client
        can no longer complete a WebSocket close handshake and its handler would only end
        when aiohttp cancels it, twice the runner's grace later (and an Engine.IO-level close
        would wait for a poll that is never read). Hence: disconnect every client at the
        Socket.IO level (its disconnect handler runs, participants are marked left, a held
        long-poll returns the DISCONNECT packet), give the writers a moment to flush, then
        close the transports of the requests still running.
        """
        budget = max(0.5, self.ctx.config.shutdown_timeout_s / 4)
        deadline = asyncio.get_running_loop().time() + budget

        def left() -> float:
            return max(0.05, deadline - asyncio.get_running_loop().time())

        sids = list(self.connections)
        if sids:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    asyncio.gather(*(self.sio.disconnect(sid) for sid in sids), return_exceptions=True), left()
                )
        await self._wait_requests_done(min(0.2, left()))
        for request in list(self._requests.values()):
            if request.transport is not None:
                request.transport.close()
        await self._wait_requests_done(left())
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.sio.shutdown(), left())

    async def _wait_requests_done(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        until = loop.time() + timeout
        while self._requests and loop.time() < until:
            await asyncio.sleep(0.01)

    # -- event plumbing ------------------------------------------------------------------------
    def _guarded(self, event: str, action: EventAction) -> Callable[..., Awaitable[None]]:
        """Wrap a handler: bad payloads and failures become an `error` to the sender, never a crash."""

        async def handler(sid: str, *args: Any) -> None:
            connection = self.connections.get(sid)
            if connection is None:
                return  # refused (being disconnected) or gone: nothing handles its events
            if connection.listening_at and asyncio.get_running_loop().time() < connection.listening_at:
                log.debug("Socket.IO %s from %s dropped: handlers not registered yet (fault)", event, sid)
                return
            try:
                await action(sid, connection, args)
            except PayloadError as err:
                await self._error(sid, f"{event}: {err}")
            except Exception as err:
                log.exception("Socket.IO %s failed", event)
                capture_error(err)
                await self._error(sid, f"{event}: failed, please retry")

        return handler

    async def _error(self, sid: str, message: str) -> None:
        with contextlib.suppress(Exception):
            await self.sio.emit("error", {"message": message}, to=sid)

    async def _to_others(self, sid: str, session_id: str, event: str, data: dict[str, Any]) -> None:
        await self.sio.emit(event, data, room=room_of(session_id), skip_sid=sid)

    @staticmethod
    def _presence(connection: Connection, session_id: str) -> dict[str, Any]:
        return {"userId": connection.user_id, "name": connection.name, "sessionId": session_id, "timestamp": _now()}

    @staticmethod
    def _require_joined(connection: Connection, session_id: str) -> None:
        if session_id not in connection.sessions:
            raise PayloadError(f"not joined to session {session_id}; emit session:join first")

    # -- events ------------------------------------------------------------------------------
    async def _join(self, sid: str, connection: Connection, args: tuple[Any, ...]) -> None:
        session_id = payloads.session_id_arg(args)
        store = self.ctx.store
        if await store.get_session(session_id) is None:
            raise PayloadError(f"session {session_id} not found")
        if not await store.can_access_session(session_id, connection.user_id):
            raise PayloadError(f"access to session {session_id} denied")
        await self.sio.enter_room(sid, room_of(session_id))
        connection.sessions.add(session_id)
        self.ctx.metrics.ws_message(CHANNEL, "inbound")
        self.ctx.metrics.set_participants(session_id, self.room_size(session_id))
        await self._to_others(sid, session_id, "user:joined", self._presence(connection, session_id))
        who = connection.name or connection.user_id
        notification = {
            "id": f"notif_{int(time.time() * 1000)}_{secrets.token_hex(5)}",
            "type": "join",
            "title": "User Joined",
            "message": f"{who} joined the session",
            "sessionId": session_id,
            "userId": connection.user_id,
            "timestamp": _now(),
            "read": False,
        }
        await self._to_others(sid, session_id, "notification", notification)

    async def _leave(self, sid: str, connection: Connection, args: tuple[Any, ...]) -> None:
        session_id = payloads.session_id_arg(args)
        self._require_joined(connection, session_id)
        await self.sio.leave_room(sid, room_of(session_id))
        connection.sessions.discard(session_id)
        self.ctx.metrics.ws_message(CHANNEL, "inbound")
        self.ctx.metrics.set_participants(session_id, self.room_size(session_id))
        await self._to_others(sid, session_id, "user:left", self._presence(connection, session_id))

    async def _chat_send(self, sid: str, connection: Connection, args: tuple[Any, ...]) -> None:
        chat = payloads.chat_send(args)
        self._require_joined(connection, chat.session_id)
        message = await self.ctx.store.add_chat_message(
            chat.session_id, connection.user_id, chat.content, chat.msg_type, chat.reply_to
        )
        await self.sio.emit("chat:message:new", jsonable(message), room=room_of(chat.session_id))
        self.ctx.metrics.ws_message(CHANNEL, "outbound")

    async def _chat_react(self, sid: str, connection: Connection, args: tuple[Any, ...]) -> None:
        reaction = payloads.reaction(args)
        message = await self.ctx.store.get_chat_message(reaction.message_id)
        if message is None:
            raise PayloadError(f"message {reaction.message_id} not found")
        session_id = str(message.get("sessionId") or message.get("session_id") or "")
        self._require_joined(connection, session_id)
        data = {"messageId": reaction.message_id, "emoji": reaction.emoji, "userId": connection.user_id}
        await self.sio.emit("message:reaction", data, room=room_of(session_id))
        self.ctx.metrics.ws_message(CHANNEL, "outbound")

    async def _cursor_update(self, sid: str, connection: Connection, args: tuple[Any, ...]) -> None:
        cursor = payloads.cursor_update(args)
        self._require_joined(connection, cursor.session_id)
        data = {
            "userId": connection.user_id,
            "name": connection.name,
            "sessionId": cursor.session_id,
            "line": cursor.line,
            "column": cursor.column,
        }
        await self._to_others(sid, cursor.session_id, "cursor:move", data)

    async def _typing(self, sid: str, connection: Connection, args: tuple[Any, ...], event: str) -> None:
        session_id = payloads.session_id_arg(args)
        self._require_joined(connection, session_id)
        data = {"userId": connection.user_id, "name": connection.name, "sessionId": session_id}
        await self._to_others(sid, session_id, event, data)

    async def _typing_start(self, sid: str, connection: Connection, args: tuple[Any, ...]) -> None:
        await self._typing(sid, connection, args, "user:typing")

    async def _typing_stop(self, sid: str, connection: Connection, args: tuple[Any, ...]) -> None:
        await self._typing(sid, connection, args, "user:stopped-typing")


def attach_socketio(app: web.Application, ctx: ProcessContext) -> RealtimeServer:
    """Serve Socket.IO at /socket.io on `app`; returns the server (also in ctx.extras)."""
    server = RealtimeServer(ctx)
    server.attach(app)
    ctx.metrics.initialise_channel(CHANNEL)
    ctx.extras["socketio"] = server
    return server
