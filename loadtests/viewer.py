"""Viewers: people who watch a session. They join, follow the document and its cursors.

    $ locust -f loadtests --headless --profile baseline

A viewer logs in once, joins a shared session over Socket.IO (receiving cursor:move, chat
and join notices) and syncs the file's Yjs document, whose updates it applies as they come;
every applied update from an editor is a propagation latency sample. It never writes.
"""

from __future__ import annotations

from _collab import Collaborator
from _runtime import RUNTIME
from _shape import ProfileShape  # noqa: F401  (the run's load shape; Locust finds it here)
from locust import task
from locust.exception import StopUser


class ViewerUser(Collaborator):
    kind = "viewer"
    weight = 1

    def wait_time(self) -> float:
        return self.rng.uniform(*self.think.viewer)

    def begin(self) -> None:
        self.join_session()

    def end(self) -> None:
        self.leave_session()

    @task
    def follow(self) -> None:
        """Look at the document: a connection that died is a failure, and ends this viewer."""
        assert self.doc is not None
        if self.doc.failure is not None:
            RUNTIME.recorder.failure("yjs", "follow", self.doc.failure)
            raise StopUser()
        self.doc.text()
