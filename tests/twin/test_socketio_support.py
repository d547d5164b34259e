"""Helpers for the Socket.IO tests (this module holds no tests): users and recording clients.

    >>> alice = register_user(twin.api_url, "Alice")          # real REST register, JWT cookie kept
    >>> peer = Peer(twin.api_url)
    >>> await peer.connect(token=alice.token)
    >>> await peer.emit("session:join", session_id)
    >>> payload = await peer.wait_for("chat:message:new")
    >>> await peer.close()

Each Peer is a real python-socketio AsyncClient over the websocket transport that records
every event it receives, in order, with its payload, so tests can assert exact payloads,
exact counts, and the absence of events (behind a chat echo used as a barrier: the server
handles one connection's events in order, so anything meant for it arrives before the echo).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import socketio

from tests.twin._http import CookieClient, unique_email


@dataclass
class User:
    id: str
    name: str
    email: str
    token: str
    api: CookieClient


def register_user(api_url: str, name: str) -> User:
    """Register over the real REST API and keep the JWT from the `token` cookie."""
    api = CookieClient(api_url)
    email = unique_email(name.lower())
    user = api.register(email=email, name=name)
    return User(id=user["id"], name=name, email=email, token=api.cookies["token"], api=api)


class Refused(Exception):
    """The server refused the handshake; `message` is what its connect_error said."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Peer:
    """One Socket.IO connection that records everything it receives."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.events: list[tuple[str, Any]] = []
        self.refusal: Any = None
        self.disconnect_reason: str | None = None
        self.sio = socketio.AsyncClient(reconnection=False, logger=False, engineio_logger=False)
        self.sio.on("connect_error", self._on_connect_error)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on("*", self._on_event)

    async def _on_connect_error(self, data: Any = None) -> None:
        self.refusal = data

    async def _on_disconnect(self, reason: Any = None) -> None:
        self.disconnect_reason = str(reason)

    async def _on_event(self, event: str, *args: Any) -> None:
        self.events.append((event, args[0] if args else None))

    async def connect(
        self,
        *,
        token: str | None = None,
        auth: Any = None,
        headers: dict | None = None,
        transport: str = "websocket",
    ) -> None:
        """Connect (websocket, or long-polling only); raises Refused with the server's connect_error message."""
        if token is not None:
            auth = {"token": token}
        try:
            await self.sio.connect(self.url, auth=auth, headers=headers or {}, transports=[transport], wait_timeout=10)
        except socketio.exceptions.ConnectionError as err:
            data = self.refusal
            message = data.get("message") if isinstance(data, dict) else str(data or err)
            raise Refused(str(message)) from None

    async def emit(self, event: str, *args: Any) -> None:
        """Emit with exactly these arguments: none, one (even None), or several."""
        if args:
            await self.sio.emit(event, tuple(args))
        else:
            await self.sio.emit(event)

    def named(self, event: str) -> list[Any]:
        return [payload for name, payload in self.events if name == event]

    async def wait_for(
        self, event: str, count: int = 1, timeout: float = 10.0, where: Callable[[Any], bool] | None = None
    ) -> Any:
        """Wait until `count` events of that name (matching `where`) arrived; returns the last one."""
        deadline = time.monotonic() + timeout
        while True:
            matching = [p for p in self.named(event) if where is None or where(p)]
            if len(matching) >= count:
                return matching[count - 1]
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"waited {timeout} s for {count} {event!r}, got {len(matching)}; received {self.events}"
                )
            await asyncio.sleep(0.01)

    async def chat(self, session_id: str, content: str | None = None, **extra: Any) -> dict[str, Any]:
        """Send a chat message and return our own echo (also a barrier for earlier events)."""
        content = content or f"barrier {uuid.uuid4().hex[:12]}"
        await self.sio.emit("chat:message:send", {"sessionId": session_id, "content": content, **extra})
        return await self.wait_for("chat:message:new", where=lambda p: p.get("content") == content)

    async def join(self, session_id: str) -> dict[str, Any]:
        """Join and confirm it with a chat echo, as the contract recommends."""
        await self.sio.emit("session:join", session_id)
        return await self.chat(session_id)

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()
        await self.sio.shutdown()


async def close_all(*peers: Peer) -> None:
    await asyncio.gather(*(peer.close() for peer in peers), return_exceptions=True)
