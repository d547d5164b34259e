"""A smoke check of a CodeSync target over all three channels, through the shared clients.

    >>> report = smoke_check("http://127.0.0.1:4000", "ws://127.0.0.1:4001")
    >>> report.ok, [step.name for step in report.steps]

One user registers, creates a PUBLIC session, autosaves a file, joins over Socket.IO and sees
its chat echo; two Yjs editors of the same document converge. Each step is timed and a
failure stops the check with the step's name and the server's answer, so "is the target
alive and speaking CodeSync?" has a one-line answer.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from scenarios.clients.rest import RestClient
from scenarios.clients.socketio import SocketIOClient
from scenarios.clients.yjs import YjsClient


@dataclass
class SmokeStep:
    name: str
    ok: bool
    seconds: float
    detail: str = ""


@dataclass
class SmokeReport:
    steps: list[SmokeStep] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(step.ok for step in self.steps)

    def failure(self) -> SmokeStep | None:
        return next((step for step in self.steps if not step.ok), None)


def smoke_check(api_url: str, yjs_url: str, timeout: float = 10.0) -> SmokeReport:
    """Run the steps in order; stop at the first failure (later steps depend on earlier ones)."""
    report = SmokeReport()
    state: dict[str, object] = {}
    rest = RestClient(api_url)

    def step(name: str, action: Callable[[], str]) -> bool:
        started = time.perf_counter()
        try:
            detail = action()
            ok = True
        except Exception as err:  # the step's failure is the report, not a crash
            detail, ok = f"{type(err).__name__}: {err}", False
        report.steps.append(SmokeStep(name, ok, time.perf_counter() - started, detail))
        return ok

    def health() -> str:
        return f"status {rest.health().raise_for_error().status}"

    def register() -> str:
        email = f"smoke-{uuid.uuid4().hex[:10]}@example.test"
        rest.register(email, "Smoke-check-1", "Smoke Check").raise_for_error()
        if not rest.token:
            raise RuntimeError("register answered without a token cookie")
        return email

    def create_session() -> str:
        result = rest.create_session("smoke session", language="python", visibility="PUBLIC").raise_for_error()
        state["session_id"] = result.data["session"]["id"]
        return str(state["session_id"])

    def autosave() -> str:
        sid = str(state["session_id"])
        rest.put_file_content(sid, "main.py", "print('smoke')\n").raise_for_error()
        got = rest.get_file_content(sid, "main.py").raise_for_error().data
        if "print('smoke')" not in str(got):
            raise RuntimeError(f"file content read back as {got!r}")
        return "main.py written and read back"

    def chat_echo() -> str:
        sid = str(state["session_id"])
        user_id = (rest.user or {}).get("id")
        sio = SocketIOClient(api_url, rest.token, user_id=user_id, timeout=timeout)
        try:
            sio.connect()
            sio.join(sid)
            trip = sio.chat(sid, "smoke hello")
            return f"echo after {trip.rtt * 1000:.1f} ms"
        finally:
            sio.disconnect()

    def yjs_converge() -> str:
        document = f"{state['session_id']}:main.py"
        with YjsClient(yjs_url, document, sync_timeout=timeout) as first, YjsClient(yjs_url, document) as second:
            first.insert(0, "hello ")
            second.insert(0, "world ")
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and (first.text() != second.text() or len(first.text()) < 12):
                time.sleep(0.01)
            if first.text() != second.text():
                raise RuntimeError(f"editors diverged: {first.text()!r} vs {second.text()!r}")
            return f"converged on {len(first.text())} characters"

    try:
        for name, action in (
            ("health", health),
            ("register", register),
            ("create-session", create_session),
            ("file-autosave", autosave),
            ("socketio-chat-echo", chat_echo),
            ("yjs-converge", yjs_converge),
        ):
            if not step(name, action):
                break
    finally:
        rest.close()
    return report
