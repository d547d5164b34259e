"""Joining and leaving a shared session, and the checks the last one out runs.

    >>> class EditorUser(Collaborator): ...
    >>> self.join_session()      # seat, Socket.IO join, Yjs document synced
    >>> self.leave_session()     # leave; the last one out checks convergence and durability

An editor first becomes a participant the product's way (the session's owner invites it as
EDITOR, it accepts: CodeSync lets only the owner and active participants write, and neither a
Socket.IO join nor anything else makes one); after a lost Socket.IO connection it is invited
and accepts again (the server set left_at on the disconnect) before it joins anew.
The browser client joins a PUBLIC session over Socket.IO (session:join), opens the file's
Yjs document (named `<sessionId>:<filePath>`, the name CodeSync's persistence stores) and
follows it. When the last participant leaves, two results go into the ledger:
- convergence: a fresh client synced from the server ends with exactly the text of the last
  participant's replica (both waited for, bounded), i.e. the replicas and the server agree;
- durability: after every connection to the document is closed, a new connection gets the
  same text back from the server's storage, and the REST content holds the last autosave.
Then the owner deletes the session (a soft delete), so sessions created = sessions deleted.
"""

from __future__ import annotations

import contextlib
import time

from _base import CodeSyncUser, entity
from _runtime import RUNTIME
from _sessions import Seat

from scenarios.clients.rest import RestClient
from scenarios.clients.socketio import SocketIOClient
from scenarios.clients.yjs import YjsError
from scenarios.clients.yjs_lean import LeanYjsConnection

FILE_PATH = "src/main.py"
CHECK_TIMEOUT_S = 5.0
ECHO_WAIT_S = 3.0


class Collaborator(CodeSyncUser):
    """A user who sits in a shared session: an editor or a viewer."""

    abstract = True

    def __init__(self, environment) -> None:
        super().__init__(environment)
        self.seat: Seat | None = None
        self.sio: SocketIOClient | None = None
        self.doc: LeanYjsConnection | None = None
        self.joined = False
        self.last_saved: str | None = None

    def _create_session(self) -> tuple[str, str, RestClient]:
        assert self.api is not None
        created = self.api.create_session(f"load {RUNTIME.run_id} {self.number}", visibility="PUBLIC")
        created.raise_for_error()
        RUNTIME.recorder.session("created")
        session_id = entity(created.data, "session")["id"]
        self.api.create_file(session_id, FILE_PATH).raise_for_error()
        return session_id, FILE_PATH, self.api

    # Editors write (autosave), so they must be participants; viewers only read a PUBLIC session.
    writes = False

    def join_session(self) -> None:
        """Sign in, take a seat (creating the session when first), become a participant if
        this user writes, join over Socket.IO, open the document."""
        self.sign_in()
        assert RUNTIME.pool is not None
        self.seat = RUNTIME.pool.take(self._create_session)
        session = self.seat.session
        if self.writes:
            self.become_participant()
        self.sio = self.open_socketio(join=session.id)  # joined on connect, as the browser does
        self.joined = True
        RUNTIME.recorder.participant(session.id, "joined")
        self.doc = self.open_yjs(session.document, session.file_path)

    def become_participant(self) -> None:
        """The owner invites this user as EDITOR and it accepts: the product's way in.

        CodeSync lets only the owner and ACTIVE participants write; a Socket.IO join makes no
        participant and a Socket.IO disconnect ends one (left_at), so this runs before the
        first join and again after every reconnect. The owner needs nothing: it owns the session.
        """
        assert self.seat is not None and self.api is not None
        session = self.seat.session
        if self.seat.creator or session.owner is None:
            return
        invited = session.owner.invite(session.id, self.email, "EDITOR").raise_for_error()
        token = entity(invited.data, "invitation").get("token")
        if not isinstance(token, str) or not token:
            raise ValueError(f"the invitation to {session.id} carries no token: {invited.body[:120]!r}")
        self.api.accept_invitation(token).raise_for_error()

    def reconnect_socketio(self) -> None:
        """After the server dropped our Socket.IO connection, come back as the browser does.

        The server already counted the connection closed and set left_at on our participant
        row, so: the drop is recorded (connection closed, participant left), the owner invites
        again and we accept, then a new connection joins the room.
        """
        assert self.seat is not None
        session = self.seat.session
        if self.joined:
            RUNTIME.recorder.participant(session.id, "left")
            self.joined = False
        RUNTIME.recorder.connection("socketio", "closed")  # the dropped one; its closer sees it disconnected
        if self.writes:
            self.become_participant()
        self.sio = self.open_socketio(join=session.id)
        self.joined = True
        RUNTIME.recorder.participant(session.id, "joined")

    def leave_session(self) -> None:
        """Leave the room and the document; the last one out checks and deletes."""
        seat, self.seat = self.seat, None
        text = None
        if self.doc is not None and self.doc.failure is None:
            # like the browser before unload: wait (briefly) until the server echoed our edits
            with contextlib.suppress(YjsError):
                self.doc.wait_for(lambda c: c.echoes_received >= c.updates_sent, ECHO_WAIT_S, "our echoes")
            text = self.doc.text()
        if seat is not None and self.joined:
            if self.sio is not None and self.sio.connected:
                with contextlib.suppress(Exception):
                    self.sio.leave(seat.session.id)
            # out of the room either by session:leave or by the disconnect that follows
            RUNTIME.recorder.participant(seat.session.id, "left")
        self.joined = False
        if seat is None:
            self.close_all()
            return
        self.final_save(seat, text)
        assert RUNTIME.pool is not None
        last = RUNTIME.pool.leave(seat)
        if last and text is not None and self.doc is not None:
            self._check_convergence(seat, self.doc)
            text = self.doc.text()  # late updates of the others arrived while checking
        api, self.api = self.api, None  # kept open for the checks and the delete
        self.close_all()
        self.api = api
        if last:
            if text is not None:
                self._check_durability(seat, text)
            self._delete(seat)
        if self.api is not None and not (seat.creator and not last):
            self.api.close()  # an owner's client stays open for whoever deletes its session

    def final_save(self, seat: Seat, text: str | None) -> None:
        """Editors save on leaving, as the browser does on close; viewers never write."""
        return None

    # -- checks ---------------------------------------------------------------------------
    def _check_convergence(self, seat: Seat, replica: LeanYjsConnection) -> None:
        document = seat.session.document
        try:
            fresh = self.open_yjs(document, seat.session.file_path, track=False)
        except YjsError as err:
            RUNTIME.ledger.result("convergence", False, document, f"checker could not sync: {err}")
            return
        try:
            # both replicas receive the same updates; wake on each frame the fresh one gets
            with contextlib.suppress(YjsError):
                fresh.wait_for(lambda c: c.text() == replica.text(), CHECK_TIMEOUT_S, "convergence")
            mine, theirs = replica.text(), fresh.text()
            if mine == theirs:
                RUNTIME.ledger.result("convergence", True, document, f"{len(mine)} characters on both")
            else:
                detail = f"server copy has {len(theirs)} characters, the last replica {len(mine)}"
                RUNTIME.ledger.result("convergence", False, document, detail)
        finally:
            self._close_yjs(fresh)

    def _check_durability(self, seat: Seat, expected: str) -> None:
        """After every connection closed, the stored document must come back unchanged."""
        document = seat.session.document
        deadline = time.monotonic() + CHECK_TIMEOUT_S
        got: str | None = None
        error = ""
        while True:
            try:
                reader = self.open_yjs(document, seat.session.file_path, track=False)
            except YjsError as err:
                error = str(err)
            else:
                try:
                    got = reader.stored_text(expected, CHECK_TIMEOUT_S)  # may follow the sync as an Update
                except YjsError as err:
                    error = str(err)
                finally:
                    self._close_yjs(reader)
                if got == expected:
                    break
            if time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        if got == expected:
            RUNTIME.ledger.result("durability", True, document, f"{len(expected)} characters back from storage")
        elif got is None:
            RUNTIME.ledger.result("durability", False, document, f"could not reconnect: {error}")
        else:
            detail = f"stored copy has {len(got)} characters, expected {len(expected)}"
            RUNTIME.ledger.result("durability", False, document, detail)
        if self.last_saved is not None and self.api is not None and self.budget.allows(search=False):
            result = self.api.get_file_content(seat.session.id, seat.session.file_path)
            content = result.data.get("content") if result.ok and isinstance(result.data, dict) else None
            same = content == self.last_saved
            verdict = "matches" if same else "differs from"
            detail = f"REST content {verdict} the final autosave ({len(self.last_saved)} characters)"
            RUNTIME.ledger.result("autosave_durability", same, f"{seat.session.id}:{seat.session.file_path}", detail)

    def _delete(self, seat: Seat) -> None:
        """The owner's client deletes the session (only the owner may), then is closed."""
        owner = seat.session.owner
        if owner is None:
            return
        result = owner.delete_session(seat.session.id)
        if result.ok:
            RUNTIME.recorder.session("deleted")
        if owner is not self.api:
            owner.close()
