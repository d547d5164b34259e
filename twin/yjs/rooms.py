"""Documents held in memory while clients edit them, and their write-behind persistence.

    >>> rooms = RoomRegistry(ctx)
    >>> room = await rooms.join("sess1:src/main.py", conn)    # starts loading the stored state
    >>> for change in room.apply_update(update): room.broadcast(update_message(change))
    >>> await rooms.leave(room, conn)                          # last one out flushes, then unloads
    >>> await rooms.flush_all()                                # at shutdown

CodeSync rewrites a document's full state on every update. Under load that is one full
encode and one database write per keystroke, so the twin coalesces: an update marks the room
dirty and a write follows at most `PERSIST_DELAY_S` later, always of the state at write time.
No edit is lost because the last client's departure and the shutdown both flush before the
room goes away. Load and unload of one name are serialised by a per-name lock, so a client
that reconnects while its room is being unloaded waits and then loads the flushed state.

The stored state is loaded asynchronously, as CodeSync's persistence does it: `join` returns
at once with the room (empty until the load lands), so a client may sync against the empty
document; when the load completes its changes are broadcast to every connection as ordinary
Update messages (that is how such a client receives the stored state). Writes wait for the
load (a write before it would replace the stored state with the new edits alone), and a load
that fails closes the room's connections (1011) and is never written over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from pycrdt import Doc, Text, TransactionEvent

from twin.context import ProcessContext
from twin.yjs.awareness import AwarenessTable
from twin.yjs.connection import Connection
from twin.yjs.protocol import update_message as _update_frame

log = logging.getLogger("twin.yjs")

# Longest time an applied update waits before the room's full state is written.
PERSIST_DELAY_S = 0.5
# Shared text CodeSync's persistence layer reads and writes.
TEXT_NAME = "codesync"


class Room:
    """One loaded document: its Doc, its connections, its awareness and its dirty flag."""

    def __init__(self, name: str, ctx: ProcessContext) -> None:
        self.name = name
        self.ctx = ctx
        self.doc = Doc()
        self.text = self.doc.get(TEXT_NAME, type=Text)
        self.conns: dict[Connection, None] = {}  # insertion-ordered set
        self.awareness = AwarenessTable()
        self.dirty = False
        # What the doc emits per transaction that changed it (Yjs' 'update' event); stays empty
        # for an update that brings nothing new or is still missing what it depends on.
        self._changes: list[bytes] = []
        self._subscription = self.doc.observe(self._on_change)
        self._persist = not ctx.config.faults.active("yjs-drop-persist")
        self._timer: asyncio.TimerHandle | None = None
        self._flush_task: asyncio.Task[None] | None = None
        self._write_lock = asyncio.Lock()
        self.loaded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._load_task: asyncio.Task[None] | None = None

    def broadcast(self, frame: bytes) -> None:
        """Queue `frame` to every connection of the document, the sender included."""
        for conn in self.conns:
            conn.send(frame)

    def _on_change(self, event: TransactionEvent) -> None:
        self._changes.append(event.update)

    def load(self, state: bytes) -> list[bytes]:
        """Apply the stored full state; returns what it changed, for the caller to broadcast.

        Loading is not an edit: it is neither counted as a persisted update nor marks the room dirty.
        """
        self.doc.apply_update(state)
        changes, self._changes = self._changes, []
        return changes

    def start_loading(self, delay_s: float = 0.0) -> None:
        """Load the stored state in the background (CodeSync's asynchronous persistence load)."""
        self._load_task = asyncio.create_task(self._load(delay_s), name=f"yjs-load-{self.name}")

    async def _load(self, delay_s: float) -> None:
        try:
            if delay_s > 0:
                await asyncio.sleep(delay_s)  # the modelled slow storage (TwinConfig.yjs_load_delay_s)
            state = await self.ctx.store.load_yjs_state(self.name)
            for change in self.load(state) if state else []:
                self.broadcast(_update_frame(change))
        except asyncio.CancelledError:
            if not self.loaded.done():
                self.loaded.set_exception(RuntimeError("load cancelled"))
            raise
        except Exception as err:
            log.error("loading Yjs document %r failed: %s", self.name, err)
            if not self.loaded.done():
                self.loaded.set_exception(err)
            for conn in list(self.conns):
                conn.close_soon(1011, b"document could not be loaded")
            return
        if not self.loaded.done():
            self.loaded.set_result(None)

    async def wait_loaded(self) -> bool:
        """Until the stored state is applied; False when the load failed (nothing may be written then)."""
        try:
            await asyncio.shield(self.loaded)
        except Exception:
            return False
        return True

    def apply_update(self, update: bytes) -> list[bytes]:
        """Apply a client's update (ValueError if pycrdt rejects it); returns what it changed.

        As in CodeSync (a Yjs 'update' handler), only a change counts and is persisted: an
        update already known, such as a reconnecting client's SyncStep2, changes nothing.
        """
        self.doc.apply_update(update)
        changes = self._changes
        if not changes:
            return changes
        self._changes = []
        for _ in changes:
            self.ctx.metrics.yjs_update_persisted()
        if self._persist:
            self.dirty = True
            if self._timer is None and self._flush_task is None:
                self._timer = asyncio.get_running_loop().call_later(PERSIST_DELAY_S, self._start_background_flush)
        return changes

    def _start_background_flush(self) -> None:
        self._timer = None
        self._flush_task = asyncio.create_task(self._background_flush(), name=f"yjs-flush-{self.name}")

    async def _background_flush(self) -> None:
        try:
            await self.flush()
        except Exception as err:  # storage hiccup: keep the edits dirty and try again later
            log.warning("writing Yjs document %r failed (%s); retrying in %.1f s", self.name, err, PERSIST_DELAY_S)
        finally:
            self._flush_task = None
        if self.dirty and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(PERSIST_DELAY_S, self._start_background_flush)

    async def flush(self) -> None:
        """Write the full state now if anything changed since the last write.

        The state is taken inside the write lock, so writes land in the order of their states.
        """
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not await self.wait_loaded():
            self.dirty = False  # a document that never loaded is never written over
            return
        async with self._write_lock:
            if not self.dirty:
                return
            self.dirty = False
            state = self.doc.get_update()
            try:
                await self.ctx.store.save_yjs_state(self.name, state)
            except BaseException:
                self.dirty = True
                raise

    def cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._load_task is not None and not self._load_task.done():
            self._load_task.cancel()


class _NameLock:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class RoomRegistry:
    """Every loaded room of one Yjs process, by document name."""

    def __init__(self, ctx: ProcessContext) -> None:
        self.ctx = ctx
        self.rooms: dict[str, Room] = {}
        self._locks: dict[str, _NameLock] = {}

    @contextlib.asynccontextmanager
    async def _locked(self, name: str) -> AsyncIterator[None]:
        entry = self._locks.get(name)
        if entry is None:
            entry = self._locks[name] = _NameLock()
        entry.users += 1  # before the first await: joiners see the name is busy
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._locks[name]

    async def join(self, name: str, conn: Connection) -> Room:
        """Add `conn` to the room `name`; a room not in memory starts loading its stored state."""
        room = self.rooms.get(name)
        if room is not None and name not in self._locks:
            room.conns[conn] = None  # fast path: loaded and not being unloaded
            self._count_connection_as_document()
            return room
        async with self._locked(name):
            room = self.rooms.get(name)
            if room is None:
                room = Room(name, self.ctx)
                room.start_loading(self.ctx.config.yjs_load_delay_s)
                self.rooms[name] = room
                self.ctx.metrics.yjs_document_loaded()
            else:
                self._count_connection_as_document()
            room.conns[conn] = None
            return room

    def _count_connection_as_document(self) -> None:
        """The docs-gauge-per-connection fault: a further connection to a loaded document moves
        codesync_yjs_documents_active as if it were another document (and its leave moves it back)."""
        if self.ctx.config.faults.active("docs-gauge-per-connection"):
            self.ctx.metrics.yjs_document_loaded()

    async def leave(self, room: Room, conn: Connection) -> None:
        """Remove `conn`; when it was the last, flush the room and unload it."""
        room.conns.pop(conn, None)
        if room.conns:
            if self.ctx.config.faults.active("docs-gauge-per-connection"):
                self.ctx.metrics.yjs_document_unloaded()
            return
        async with self._locked(room.name):
            if room.conns or self.rooms.get(room.name) is not room:
                return
            try:
                await room.flush()
            except Exception as err:
                log.error("Yjs document %r could not be written on unload: %s", room.name, err)
            finally:
                room.cancel_timer()
                del self.rooms[room.name]
                self.ctx.metrics.yjs_document_unloaded()

    async def flush_all(self) -> None:
        """Write every dirty room (shutdown); one room's failure does not stop the others."""
        rooms = list(self.rooms.values())
        results = await asyncio.gather(*(room.flush() for room in rooms), return_exceptions=True)
        for room, result in zip(rooms, results, strict=True):
            if isinstance(result, BaseException):
                log.error("Yjs document %r could not be written at shutdown: %s", room.name, result)
