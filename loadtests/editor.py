"""Editors: the people who type. One account, one shared PUBLIC session, one file's document.

    $ locust -f loadtests --headless --profile smoke

An editor logs in once, is invited by its session's owner and accepts (only participants may
write), joins its session over Socket.IO, opens the file's Yjs document,
then repeats: a burst of keystrokes (profile `burst_chars`, `keystroke` apart) near the start
of the text, sometimes a cursor move (Socket.IO cursor:update plus the awareness cursor),
sometimes a chat message (its echo timed), then think time (`between_bursts`). Like the
browser it autosaves the file over REST every `autosave_interval` seconds (10 s) in the
background, and once more when it leaves.
"""

from __future__ import annotations

import gevent
import gevent.event
from _collab import Collaborator
from _runtime import RUNTIME
from _sessions import Seat
from _shape import ProfileShape  # noqa: F401  (the run's load shape; Locust finds it here)
from locust import task
from locust.exception import StopUser

from scenarios.clients.rest import ApiError
from scenarios.clients.socketio import SioError
from scenarios.clients.yjs import YjsError


class EditorUser(Collaborator):
    kind = "editor"
    weight = 2
    writes = True

    def wait_time(self) -> float:
        return self.rng.uniform(*self.think.between_bursts)

    def begin(self) -> None:
        self._autosaver = None
        self._stopping = gevent.event.Event()
        self.join_session()
        self._autosaver = gevent.spawn(self._autosave_loop)

    def end(self) -> None:
        # Ask the autosaver to stop rather than kill it: a request killed in flight reaches
        # the server but never the ledger, and the counts must stay exact.
        if getattr(self, "_autosaver", None) is not None:
            self._stopping.set()
            self._autosaver.join()
        self.leave_session()

    @task
    def type_burst(self) -> None:
        assert self.doc is not None and self.sio is not None and self.seat is not None
        session = self.seat.session
        if not self.sio.connected:  # the server dropped us: back in, as a participant again
            try:
                self.reconnect_socketio()
            except (ApiError, SioError) as err:
                RUNTIME.recorder.failure("socketio", "reconnect", err)
                raise StopUser() from err
            assert self.sio is not None
        try:
            for _ in range(self.rng.randint(*self.think.burst_chars)):
                self.doc.type_near_start(self.rng)
                gevent.sleep(self.think.keystroke)
            if self.rng.random() < self.think.cursor_probability:
                line, column = self.rng.randint(1, 40), self.rng.randint(0, 60)
                self.sio.cursor(session.id, line, column)
                self.doc.set_cursor(line, column, session.file_path)
        except YjsError as err:
            RUNTIME.recorder.failure("yjs", "edit", err)
            raise StopUser() from err
        if self.rng.random() < self.think.chat_probability:
            self.chat(self.sio, session.id, f"note from {self.kind} {self.number}: {self.rng.randint(0, 9999)}")

    def _autosave_loop(self) -> None:
        while not self._stopping.wait(self.think.autosave_interval):
            if self.seat is not None and self.doc is not None and self.doc.failure is None:
                self.autosave(self.seat, self.doc.text())

    def autosave(self, seat: Seat, text: str) -> None:
        """PUT the file's content, as the browser's autosave does (skipped past the budget)."""
        if self.api is None or not self.budget.allows(search=False):
            return
        if self.api.put_file_content(seat.session.id, seat.session.file_path, text).ok:
            self.last_saved = text

    def final_save(self, seat: Seat, text: str | None) -> None:
        if text is not None:
            self.autosave(seat, text)
