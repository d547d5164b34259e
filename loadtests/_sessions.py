"""Groups of users that share one CodeSync session, as people in one class or team do.

    >>> pool = SessionPool(participants=3)
    >>> seat = pool.take(create=lambda: make_session_over_rest())   # the first one creates
    >>> seat.session.id, seat.session.file_path, seat.creator
    >>> if pool.leave(seat): delete_session(seat.session)           # the last one out cleans up

The profile's `participants` is the number of users per session. The pool lives in one
process (each Locust worker fills its own sessions), needs no coordination service, and
hands out seats in arrival order: a session is created by the first user who finds no seat,
filled by the next `participants - 1`, and deleted by whoever leaves it last. A seat that is
given back is not handed out again, so a session's history stays simple to reconcile.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class SessionUnavailable(Exception):
    """The session this user was seated in could not be created."""


@dataclass
class SharedSession:
    """One CodeSync session, its shared file, and who sits in it."""

    id: str = ""
    file_path: str = ""
    owner: Any = None  # the creator's RestClient: only the owner may delete
    seats_given: int = 0
    present: int = 0
    error: str | None = None
    ready: threading.Event = field(default_factory=threading.Event)

    @property
    def document(self) -> str:
        """The Yjs document name the persistence layer stores: <sessionId>:<filePath>."""
        return f"{self.id}:{self.file_path}"


@dataclass(frozen=True)
class Seat:
    session: SharedSession
    creator: bool


class SessionPool:
    """Seats users in shared sessions of `participants` each (one pool per process)."""

    def __init__(self, participants: int, wait_timeout: float = 30.0) -> None:
        self.participants = participants
        self.wait_timeout = wait_timeout
        self._lock = threading.Lock()
        self._filling: SharedSession | None = None
        self.sessions: list[SharedSession] = []

    def take(self, create: Callable[[], tuple[str, str, Any]]) -> Seat:
        """A seat; the first user of a session runs `create()` -> (id, file_path, owner)."""
        with self._lock:
            current = self._filling
            if current is None or current.seats_given >= self.participants or current.error:
                current = SharedSession()
                self.sessions.append(current)
                self._filling = current
                creator = True
            else:
                creator = False
            current.seats_given += 1
            current.present += 1
        if creator:
            try:
                current.id, current.file_path, current.owner = create()
            except BaseException as err:
                current.error = f"{type(err).__name__}: {err}"
                with self._lock:
                    current.present -= 1
                current.ready.set()
                raise
            current.ready.set()
        elif not current.ready.wait(self.wait_timeout):
            self._give_back(current)
            raise SessionUnavailable(f"the session's creator did not finish within {self.wait_timeout:g} s")
        if current.error:
            self._give_back(current)
            raise SessionUnavailable(f"the session could not be created ({current.error})")
        return Seat(current, creator)

    def _give_back(self, session: SharedSession) -> None:
        with self._lock:
            session.present -= 1

    def leave(self, seat: Seat) -> bool:
        """Give the seat back; True when this was the last user present (delete it then)."""
        with self._lock:
            seat.session.present -= 1
            last = seat.session.present == 0
            if last and self._filling is seat.session:
                self._filling = None  # never hand out seats of a session being deleted
            return last
