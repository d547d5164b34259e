"""The awareness table of one document, kept the way y-protocols' server side keeps it.

    >>> table = AwarenessTable()
    >>> change = table.apply(payload)           # payload of an inbound awareness frame
    >>> change.added, change.removed            # client ids that appeared / went away
    >>> relay = table.encode(change.changed)    # what every connection is sent

The server holds no awareness state of its own (upstream sets its local state to null), so
pycrdt's Awareness, which always carries a local client, does not fit; the rules below are
y-protocols' `applyAwarenessUpdate` and `removeAwarenessStates`: a higher clock wins, an equal
clock with a null state removes, and a removal keeps the clock so that receivers accept it.
States stay as the JSON text the client sent; they are only checked to be JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from pycrdt import write_var_uint

from twin.yjs.protocol import ProtocolError, read_var_string, read_var_uint


@dataclass
class AwarenessChange:
    added: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)

    @property
    def changed(self) -> list[int]:
        return self.added + self.updated + self.removed


class AwarenessTable:
    """Client id -> (clock, JSON state) for the clients present, plus the clocks of those gone."""

    def __init__(self) -> None:
        self.clocks: dict[int, int] = {}
        self.states: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self.states)

    def apply(self, payload: bytes) -> AwarenessChange:
        """Apply an encoded awareness update; raises ProtocolError on a malformed one.

        The whole update is decoded before anything is applied, so garbage changes nothing.
        """
        entries: list[tuple[int, int, str | None]] = []
        count, pos = read_var_uint(payload, 0)
        for _ in range(count):
            client_id, pos = read_var_uint(payload, pos)
            clock, pos = read_var_uint(payload, pos)
            text, pos = read_var_string(payload, pos)
            try:
                state = json.loads(text) if text else None
            except ValueError:
                raise ProtocolError(f"awareness state of client {client_id} is not JSON") from None
            entries.append((client_id, clock, None if state is None else text))
        change = AwarenessChange()
        for client_id, clock, state in entries:
            known = self.clocks.get(client_id)
            current = 0 if known is None else known
            present = client_id in self.states
            if not (current < clock or (current == clock and state is None and present)):
                continue
            self.clocks[client_id] = clock
            if state is None:
                if present:
                    del self.states[client_id]
                    change.removed.append(client_id)
            else:
                self.states[client_id] = state
                (change.updated if present else change.added).append(client_id)
        return change

    def remove(self, client_ids: list[int] | set[int]) -> list[int]:
        """Drop the states of clients whose connection closed; returns the ids that were present."""
        gone = [client_id for client_id in client_ids if client_id in self.states]
        for client_id in gone:
            del self.states[client_id]
        return gone

    def encode(self, client_ids: list[int]) -> bytes:
        """An encoded awareness update of these clients ("null" for those that are gone)."""
        parts = [write_var_uint(len(client_ids))]
        for client_id in client_ids:
            state = self.states.get(client_id, "null").encode()
            parts += (
                write_var_uint(client_id),
                write_var_uint(self.clocks.get(client_id, 0)),
                write_var_uint(len(state)),
                state,
            )
        return b"".join(parts)

    def encode_all(self) -> bytes:
        return self.encode(list(self.states))
