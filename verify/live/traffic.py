"""Traffic recipes for the alert scenarios: paced loops in threads, counting what came back.

    >>> with Traffic.start(stack, "search-flood") as traffic:   # 25 searches/s by one user
    ...     wait_until_firing(...)
    >>> traffic.outcomes        # Counter({"429": 612, "200": 30})

Each recipe is a function `(stack, stop) -> list of (action, rate/s)`: it does its setup
(fresh users, sessions, addresses) once and returns the actions the loops repeat. Loops are
paced to an absolute schedule (a slow answer does not lower the rate below what the loop
can keep; several loops run a recipe's action concurrently when one answer takes seconds),
and every outcome is counted under a short label, so a scenario's evidence says what the
target really answered.

Rates are chosen against the thresholds of monitoring/alerts.yml, which compression does
not change (a rate per second stays a rate per second; only windows and `for` shrink):
see each recipe's docstring.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from codesync_load.errors import HarnessError
from scenarios.clients.rest import RestClient
from scenarios.clients.socketio import SocketIOClient
from scenarios.clients.yjs import YjsClient
from verify.live.actors import fresh_loopback, fresh_session, fresh_user, user_id
from verify.live.limits import ADMITTED, LIMITS, socketio_attempt, yjs_attempt

Action = Callable[[], str]


@dataclass
class Loop:
    """One paced action: `action()` returns the outcome label; run `concurrency` copies."""

    action: Action
    rate: float  # per second, summed over the copies
    concurrency: int = 1
    cleanup: Callable[[], None] | None = None


Recipe = Callable[[Any], list[Loop]]


def _status(code: int) -> str:
    return str(code) if code else "no answer"


def sessions_list(stack: Any) -> list[Loop]:
    """GET /api/sessions at 10/s: with error-burst=0.5 about half are 500, far above 5 %."""
    client = RestClient(stack.api_url)
    return [Loop(lambda: _status(client.list_sessions().status), rate=10.0, cleanup=client.close)]


def slow_autosave(stack: Any) -> list[Loop]:
    """File-content PUTs (the autosave route) by 4 concurrent writers of their own user.

    With slow-route=2500 every PUT the twin handles takes 2.5 s, i.e. lands in the (1, 5]
    bucket; p95 crosses 2 s once more than 1/15 of all requests are there. Answers the fault
    short-cuts (error-burst) are fast, which still leaves far more than 1/15 slow.
    Four users, so no PUT is refused by the files limit (60/min per user; each writer does
    at most 24/min).
    """
    loops = []
    for index in range(4):
        client = fresh_user(stack.api_url, "autosave", tries=20)
        session_id = fresh_session(client, tries=20)
        path = f"src/autosave-{index}.py"

        def put(client: RestClient = client, session_id: str = session_id, path: str = path) -> str:
            return _status(client.put_file_content(session_id, path, f"saved at {time.time()}").status)

        loops.append(Loop(put, rate=0.4, concurrency=1, cleanup=client.close))
    return loops


def search_flood(stack: Any) -> list[Loop]:
    """One fresh user searching at 25/s: after 30 allowed, every attempt is a 429.

    HighRateLimitHits needs more than 10 rejections/s over its window (5m, 5 s at 60x) and
    for its `for` (5m, 5 s): 25/s leaves room for a busy machine (the loops only need > 10/s).
    Rejected attempts are recorded by the limiter too, so the user never leaves the limit.
    """
    client = fresh_user(stack.api_url, "flood")
    session_id = fresh_session(client)
    lock = threading.Lock()

    def search() -> str:
        with lock:  # RestClient is one user's client: not for two threads at once
            return _status(client.search(session_id, "needle").status)

    return [Loop(search, rate=25.0, concurrency=1, cleanup=client.close)]


def yjs_over_limit(stack: Any) -> list[Loop]:
    """Yjs connections from one fresh loopback address, 100 admitted then refused at 2/s.

    WebSocketConnectionFailures needs more than 0.1 refusals/s; the limit is 100 connections
    per 60 s per client IP, so the first 100 (opened here, at once) are admitted and every
    later attempt within the minute is closed with 1008. 2/s is 20x the threshold.
    """
    address = fresh_loopback()
    document = f"verify-ws-limit-{uuid.uuid4().hex[:8]}"
    attempt = partial(yjs_attempt, stack.yjs_url, document, address)
    return _over_limit(attempt, LIMITS["yjs"], f"Yjs connection from {address}", "Yjs")


def _over_limit(attempt: Action, limit: int, who: str, channel: str) -> list[Loop]:
    """Spend a connection limit at once (every attempt must be admitted), then keep attempting
    at 2/s: each refused attempt is recorded by the sliding window too, so it stays refused."""
    for _ in range(limit):
        outcome = attempt()
        if outcome != ADMITTED:
            raise HarnessError(f"{who} was {outcome} before the limit of {limit}; is {channel} healthy?")
    return [Loop(attempt, rate=2.0)]


def healthy_mix(stack: Any) -> list[Loop]:
    """Traffic well inside every limit: what a few quiet editors do.

    Two users each list sessions, save and read a file (files: 24/min per user < 60) and one
    Yjs editor types on its own address (one connection, never near 100/min); no fault, so
    no 5xx, no slow answer, no refusal: every rule must stay silent.
    """
    loops = []
    for index in range(2):
        client = fresh_user(stack.api_url, "healthy", tries=20)
        session_id = fresh_session(client, tries=20)
        path = f"src/healthy-{index}.py"
        lock = threading.Lock()

        def browse(client: RestClient = client, lock: threading.Lock = lock) -> str:
            with lock:
                return _status(client.list_sessions().status)

        def save(
            client: RestClient = client, session_id: str = session_id, path: str = path, lock: threading.Lock = lock
        ) -> str:
            with lock:
                put = client.put_file_content(session_id, path, f"print({time.time()})")
                if not put.ok:
                    return _status(put.status)
                return _status(client.get_file_content(session_id, path).status)

        loops.append(Loop(browse, rate=2.0, cleanup=client.close))
        loops.append(Loop(save, rate=0.2))
    editor = YjsClient(
        stack.yjs_url, f"verify-healthy-{uuid.uuid4().hex[:8]}", registry=None, source_address=fresh_loopback()
    )
    editor.connect()
    counter = iter(range(10**9))

    def type_one() -> str:
        editor.raise_if_failed()
        editor.insert(0, chr(ord("a") + next(counter) % 26))
        return "typed"

    loops.append(Loop(type_one, rate=2.0, cleanup=editor.close))
    return loops


def socketio_over_limit(stack: Any) -> list[Loop]:
    """One fresh user opens its 100 Socket.IO connections, then keeps being refused at 2/s.

    As search-flood and yjs-over-limit do for their limiters: refused attempts are recorded
    by the sliding window too, so the user never leaves the limit while the loop runs.
    """
    client = fresh_user(stack.api_url, "sio-flood")
    try:
        token, uid = client.token, user_id(client)
        session_id = fresh_session(client)
    finally:
        client.close()
    attempt = partial(socketio_attempt, stack.api_url, token, uid, session_id)
    return _over_limit(attempt, LIMITS["socketio"], f"Socket.IO connection of {uid}", "Socket.IO")


def socketio_chat(stack: Any) -> list[Loop]:
    """One user stays connected in its session and chats at 1/s, each message's echo awaited."""
    client = fresh_user(stack.api_url, "sio-chat")
    try:
        session_id = fresh_session(client)
    finally:
        client.close()
    sio = SocketIOClient(stack.api_url, client.token, user_id=user_id(client), timeout=10.0)
    try:
        sio.connect()
        sio.join_confirmed(session_id)
    except BaseException:
        sio.disconnect()
        raise
    lock = threading.Lock()

    def chat() -> str:
        with lock:
            sio.chat(session_id)
            return "chatted"

    return [Loop(chat, rate=1.0, cleanup=sio.disconnect)]


RECIPES: dict[str, Recipe] = {
    "sessions-list": sessions_list,
    "slow-autosave": slow_autosave,
    "search-flood": search_flood,
    "yjs-over-limit": yjs_over_limit,
    "healthy-mix": healthy_mix,
    "socketio-over-limit": socketio_over_limit,
    "socketio-chat": socketio_chat,
}


@dataclass
class Traffic:
    """The running loops of one recipe; a context manager that stops and joins them."""

    recipe: str
    loops: list[Loop]
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    started_at: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def start(cls, stack: Any, recipe: str) -> Traffic:
        if recipe not in RECIPES:
            raise HarnessError(f"unknown traffic recipe {recipe!r}; use one of {', '.join(RECIPES)}")
        traffic = cls(recipe, RECIPES[recipe](stack))
        traffic.started_at = time.time()
        for loop in traffic.loops:
            for copy in range(loop.concurrency):
                thread = threading.Thread(target=traffic._run, args=(loop, copy), daemon=True, name=f"traffic-{recipe}")
                traffic._threads.append(thread)
                thread.start()
        return traffic

    def _run(self, loop: Loop, copy: int) -> None:
        period = loop.concurrency / loop.rate
        next_at = time.monotonic() + copy * period / loop.concurrency
        while not self._stop.is_set():
            try:
                outcome = loop.action()
            except Exception as err:  # a failing call is an outcome, never a dead loop
                outcome = f"error {type(err).__name__}"
            with self._lock:
                self.outcomes[outcome] += 1
            next_at = max(next_at + period, time.monotonic() - period)
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)
        for loop in self.loops:
            if loop.cleanup is not None:
                with contextlib.suppress(Exception):
                    loop.cleanup()

    def summary(self) -> str:
        with self._lock:
            return ", ".join(f"{label}: {count}" for label, count in sorted(self.outcomes.items())) or "nothing sent"

    def __enter__(self) -> Traffic:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def running(stack: Any, recipe: str | None) -> Iterator[Traffic | None]:
    """`Traffic.start` as a block, or nothing when the scenario has no traffic."""
    if recipe is None:
        yield None
        return
    traffic = Traffic.start(stack, recipe)
    try:
        yield traffic
    finally:
        traffic.stop()
