"""What every CodeSync user shares: its account, its clients, and reporting to two places.

    >>> class EditorUser(CodeSyncUser):
    ...     kind = "editor"                       # the profile's weight key
    ...     def begin(self):                      # Locust's on_start, made safe
    ...         self.sign_in()                    # register + log in once, as a person does
    ...         self.sio = self.open_socketio()   # counted: connection opened/refused/closed

Every client call lands in the ledger (through scenarios.recording) and in Locust's
statistics (through scenarios.clients.locust_events, the one adapter to Locust: a request
event per call, Yjs propagation samples in batches), so the two never disagree about what
was sent. Think times come from the
profile, read when the user starts, so a profile change needs no code change.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from _runtime import RUNTIME
from locust import User
from locust.exception import StopUser

from scenarios.clients.locust_events import report, rest_observer, yjs_observer
from scenarios.clients.rest import ApiResult, RestClient
from scenarios.clients.socketio import SioConnectError, SioError, SioRateLimited, SocketIOClient
from scenarios.clients.yjs import YjsError, YjsRateLimited
from scenarios.clients.yjs_lean import LeanYjsConnection
from scenarios.profiles import ThinkTimes

PASSWORD = "LoadTest1234"
# The contract's per-user limits on the files/search key, with a safety margin.
FILES_BUDGET = 55
SEARCH_BUDGET = 27
BUDGET_WINDOW_S = 60.0


def entity(data: Any, key: str) -> dict[str, Any]:
    """The object of a success envelope, wrapped ({"session": {...}}) or not."""
    if isinstance(data, dict) and isinstance(data.get(key), dict):
        return data[key]
    return data if isinstance(data, dict) else {}


class RateBudget:
    """A user's own count of files/search hits in the last minute, to stay under the limits.

    CodeSync counts the four files/search routes on ONE key per user: files calls are refused
    from 60 hits in 60 s, search from 30. A user whose profile does not mean to cross the
    limits asks `allows()` before such a call and skips it when the budget is spent.
    """

    def __init__(self, enforce: bool) -> None:
        self.enforce = enforce
        self.hits: deque[float] = deque()

    def allows(self, search: bool) -> bool:
        now = time.monotonic()
        while self.hits and now - self.hits[0] >= BUDGET_WINDOW_S:
            self.hits.popleft()
        if self.enforce and len(self.hits) >= (SEARCH_BUDGET if search else FILES_BUDGET):
            return False
        self.hits.append(now)
        return True


def source_address_for(number: int) -> str:
    """A distinct loopback address per user (127.1.0.1, 127.1.0.2, ...), pid-salted.

    CodeSync admits 100 Yjs connections a minute per client IP; every byte still stays on
    127.0.0.0/8, which is all local (field notes).
    """
    base = int(ipaddress.IPv4Address("127.1.0.0")) + (os.getpid() % 200) * 65536
    return str(ipaddress.IPv4Address(base + 1 + number % 65000))


class CodeSyncUser(User):
    """Abstract base: account, clients, recording. Subclasses set `kind` and tasks."""

    abstract = True
    kind = ""

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.number = RUNTIME.next_user_number()
        self.rng = random.Random(f"{RUNTIME.run_id}-{os.getpid()}-{self.number}")
        profile = RUNTIME.profile
        self.think: ThinkTimes = profile.think if profile else ThinkTimes()
        self.crosses_limits = bool(profile and profile.crosses_rate_limits)
        self.budget = RateBudget(enforce=not self.crosses_limits)
        self.api: RestClient | None = None
        self.user_id: str | None = None
        self.email = ""
        self._closers: list[Callable[[], None]] = []

    # -- life cycle ------------------------------------------------------------------------
    def on_start(self) -> None:
        """Run `begin()`; a failure ends this user through on_stop, so what it opened is closed.

        (Locust lets an exception escape on_start without calling on_stop: connections would
        stay open and the ledger would miss their closing.)
        """
        try:
            self.begin()
        except StopUser:
            raise
        except Exception as err:
            RUNTIME.recorder.failure("user", f"{self.kind} start", err)
            raise StopUser() from err

    def on_stop(self) -> None:
        self.end()

    def begin(self) -> None:
        """What the user does once when it starts (sign in, join, ...)."""

    def end(self) -> None:
        """What the user does when it stops; by default close what it opened."""
        self.close_all()

    # -- timing ----------------------------------------------------------------------------
    def pause(self, span: tuple[float, float]) -> None:
        """Sleep a uniform time from the profile range (gevent-friendly)."""
        time.sleep(self.rng.uniform(*span))

    # -- REST ------------------------------------------------------------------------------
    def new_rest_client(self) -> RestClient:
        """A REST client whose every result reaches the ledger and Locust's statistics."""
        client = RestClient(self.host, rest_transport())
        client.observe(RUNTIME.recorder.http)
        client.observe(self._note_unexpected)
        client.observe(rest_observer(self.environment, expected=self.expected_result))
        return client

    def _note_unexpected(self, result: ApiResult) -> None:
        if not self.expected_result(result):
            RUNTIME.recorder.unexpected_http(result)

    def expected_result(self, result: ApiResult) -> bool:
        """2xx, and a 429 too when the profile means to cross the rate limits."""
        return result.ok or (self.crosses_limits and result.status == 429)

    def sign_in(self) -> RestClient:
        """Register a fresh account and log in once (both bcrypt-heavy on the server)."""
        api = self.new_rest_client()
        self.email = f"{self.kind}-{RUNTIME.run_id}-{os.getpid()}-{self.number}@load.codesync.test"
        name = f"{self.kind.title()} {self.number}"
        api.register(self.email, PASSWORD, name).raise_for_error()
        login = api.login(self.email, PASSWORD).raise_for_error()
        self.user_id = entity(login.data, "user").get("id") or (api.user or {}).get("id")
        self.api = api
        return api

    # -- Socket.IO -------------------------------------------------------------------------
    def open_socketio(self, join: str | None = None) -> SocketIOClient:
        """Connect over Socket.IO with our JWT; counted as opened or refused.

        `join` is emitted on `connect` itself, as the browser's socket.io-client does (eager).
        Either refusal shape (connect_error, or CodeSync's connect then server disconnect)
        is counted as refused, RATE_LIMIT, never as opened.
        """
        assert self.api is not None and self.api.token
        sio = SocketIOClient(self.host, self.api.token, user_id=self.user_id)
        sio.observe(RUNTIME.recorder.socketio_event)
        started = time.perf_counter()
        try:
            sio.connect(join=join)
        except SioConnectError as err:
            code = "RATE_LIMIT" if isinstance(err, SioRateLimited) else "REFUSED"
            RUNTIME.recorder.connection("socketio", "refused", code)
            report_failure(self, "SIO", "connect", time.perf_counter() - started, err)
            raise
        RUNTIME.recorder.connection("socketio", "opened")
        report_success(self, "SIO", "connect", time.perf_counter() - started)
        self._closers.append(lambda: self._close_socketio(sio))
        return sio

    def _close_socketio(self, sio: SocketIOClient) -> None:
        was_connected = sio.connected
        sio.disconnect()  # flushes pending emits first (a session:leave must reach the server)
        if was_connected:
            RUNTIME.recorder.connection("socketio", "closed")

    def chat(self, sio: SocketIOClient, session_id: str, text: str) -> None:
        """A chat message and its echo (round trip kept raw in the ledger)."""
        started = time.perf_counter()
        try:
            trip = sio.chat(session_id, text)
        except SioError as err:
            RUNTIME.recorder.failure("socketio", "chat", err)
            report_failure(self, "SIO", "chat:message:send", time.perf_counter() - started, err)
            return
        RUNTIME.recorder.latency("chat_rtt_s", trip.rtt)
        report_success(self, "SIO", "chat:message:send", trip.rtt)

    # -- Yjs -------------------------------------------------------------------------------
    def open_yjs(self, document: str, file_path: str, track: bool = True) -> LeanYjsConnection:
        """Connect and sync a document; counted as opened, or refused with the reason.

        With `track` the connection is closed by `close_all()`; checkers close their own.
        The connection is the lean one (a hub watcher, no thread): same events, samples and
        awareness as YjsClient at the cost the load targets need (benchmarks/RESULTS.md).
        """
        source = None if self.crosses_limits else source_address_for(self.number)
        client = LeanYjsConnection(
            RUNTIME.environment.parsed_options.yjs_url,
            document,
            name=f"{self.kind}-{self.number}",
            file=file_path,
            source_address=source,
            observers=(RUNTIME.recorder.yjs_event,),
        )
        client.observe(yjs_observer(self.environment))
        started = time.perf_counter()
        try:
            client.connect()
        except YjsError as err:
            code = "RATE_LIMIT" if isinstance(err, YjsRateLimited) else type(err).__name__
            RUNTIME.recorder.connection("yjs", "refused", code)
            report_failure(self, "YJS", "connect+sync", time.perf_counter() - started, err)
            client.close()
            raise
        RUNTIME.recorder.connection("yjs", "opened", document=document)
        RUNTIME.recorder.latency("yjs_connect_sync_s", client.sync_time or 0.0)
        report_success(self, "YJS", "connect+sync", client.sync_time or 0.0)
        if track:
            self._closers.append(lambda: self._close_yjs(client))
        return client

    def _close_yjs(self, client: LeanYjsConnection) -> None:
        failed = client.failure is not None
        client.close()
        if failed:
            RUNTIME.recorder.failure("yjs", "session", client.failure)
        RUNTIME.recorder.connection("yjs", "closed", document=client.document)

    # -- stop ------------------------------------------------------------------------------
    def close_all(self) -> None:
        """Close what this user opened, newest first; safe after a half-done start."""
        while self._closers:
            closer = self._closers.pop()
            with contextlib.suppress(Exception):
                closer()
        if self.api is not None:
            self.api.close()


def report_success(user: User, request_type: str, name: str, seconds: float, length: int = 0) -> None:
    report(user.environment, request_type, name, seconds * 1000.0, response_length=length)


def report_failure(user: User, request_type: str, name: str, seconds: float, error: BaseException) -> None:
    report(user.environment, request_type, name, seconds * 1000.0, exception=error)


def rest_transport() -> Any:
    """Locust's FastHttpSession transport when the clients provide it, else plain urllib3.

    Both are cooperative under gevent; neither reports to Locust by itself (the observers do).
    """
    try:
        from scenarios.clients.locust_transport import LocustHttpTransport
    except ImportError:
        from scenarios.clients.transport import Urllib3Transport

        return Urllib3Transport(timeout=30.0)
    return LocustHttpTransport()
