"""Browsing users: the REST-heavy visitors who list sessions, open files and search.

    $ locust -f loadtests --headless --profile stress     # the one that meets the 429s

A browsing user logs in once and owns one small PUBLIC session with a file (something to
browse even when no editor runs). Then, `browser` think time apart: lists the sessions
(not rate limited), opens a file of one of them (files list + content GET, on the user's
files/search key) or searches one (search, same key). Within the contract's limits unless
the profile says `crosses_rate_limits = true`: then it never holds back and the 429s it
meets are counted by limiter in the ledger and expected in Locust's statistics.
"""

from __future__ import annotations

from typing import Any

from _base import CodeSyncUser, entity
from _runtime import RUNTIME
from _shape import ProfileShape  # noqa: F401  (the run's load shape; Locust finds it here)
from locust import task

from scenarios.clients.rest import SESSIONS, ApiResult

SAMPLE_CODE = "def greet(name):\n    return f'hello {name}'\n\nprint(greet('load'))\n"
QUERIES = ("greet", "print", "hello", "def", "load")


def _items(data: Any, key: str) -> list[dict]:
    """A list response, whether the API wraps it ({"sessions": [...]}) or not."""
    if isinstance(data, dict):
        data = data.get(key, data.get("items", []))
    return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []


class BrowserUser(CodeSyncUser):
    kind = "browser"
    weight = 1

    def wait_time(self) -> float:
        return self.rng.uniform(*self.think.browser)

    def begin(self) -> None:
        self.own_session: str | None = None
        self.known: list[str] = []
        api = self.sign_in()
        created = api.create_session(f"browse {RUNTIME.run_id} {self.number}", visibility="PUBLIC")
        created.raise_for_error()
        RUNTIME.recorder.session("created")
        self.own_session = entity(created.data, "session")["id"]
        api.create_file(self.own_session, "README.py").raise_for_error()
        if self.budget.allows(search=False):
            api.put_file_content(self.own_session, "README.py", SAMPLE_CODE)
        self.known = [self.own_session]

    def end(self) -> None:
        own = getattr(self, "own_session", None)
        if self.api is not None and own and self.api.delete_session(own).ok:
            RUNTIME.recorder.session("deleted")
        self.close_all()

    def expected_result(self, result: ApiResult) -> bool:
        """Also expected: 404/403 on someone else's session that was deleted meanwhile.

        Sessions come and go while people browse (their owners delete them when they
        leave); the server answering "not found" then is right, not a failure.
        """
        if result.status in (403, 404) and result.route != SESSIONS:
            return True
        return super().expected_result(result)

    def forget_missing(self, session_id: str, result: ApiResult) -> None:
        if result.status in (403, 404) and session_id in self.known and session_id != self.own_session:
            self.known.remove(session_id)

    def _pick(self) -> str | None:
        return self.rng.choice(self.known) if self.known else None

    @task(3)
    def list_sessions(self) -> None:
        assert self.api is not None
        result = self.api.list_sessions()
        if result.ok:
            ids = [s["id"] for s in _items(result.data, "sessions") if isinstance(s.get("id"), str)]
            self.known = ids[-20:] or self.known
            if self.own_session and self.own_session not in self.known:
                self.known.append(self.own_session)

    @task(3)
    def open_file(self) -> None:
        assert self.api is not None
        session_id = self._pick()
        if session_id is None or not self.budget.allows(search=False):
            return
        listed = self.api.list_files(session_id)
        self.forget_missing(session_id, listed)
        files = [f for f in _items(listed.data, "files") if f.get("type", "file") == "file"] if listed.ok else []
        if not files or not self.budget.allows(search=False):
            return
        chosen = self.rng.choice(files)
        path = chosen.get("path") or chosen.get("name")
        if isinstance(path, str):
            self.forget_missing(session_id, self.api.get_file_content(session_id, path))

    @task(1)
    def search(self) -> None:
        assert self.api is not None
        session_id = self._pick()
        if session_id is None or not self.budget.allows(search=True):
            return
        self.forget_missing(session_id, self.api.search(session_id, self.rng.choice(QUERIES)))
