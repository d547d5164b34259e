"""Spend one rate-limit budget on a fresh user or address, and say what the target answered.

    >>> run = exhaust(target, "search", extra=3)
    >>> run.admitted, run.refused, run.series      # 30, 3, {"type": "API", "user_id": "c..."}
    >>> run.header_problems                        # [] when every 429 carried the contract's headers

One function per limiter of the contract: the files routes (60 per 60 s per user), search
(30, same key), Socket.IO connections (100 per user) and Yjs connections (100 per client IP,
refused with close 1008). A refusal takes any of its real shapes: a 429, a WebSocket close
1008, a Socket.IO `connect_error`, or CodeSync's own Socket.IO refusal, a connection accepted
and disconnected by the server within moments of its connect. Each Socket.IO attempt proves
itself: it joins a session of its user on connect and sends a chat message; the echo (or any
answer) shows the connection admitted, a server disconnect first shows it refused, so no
attempt waits out a window. Each attempt is made strictly after the previous one, so the
number admitted before the first refusal is the limit itself, and `extra` attempts past it
must all be refused and counted: the counter series of the fresh user/address moves by
exactly `refused`, which the check compares on the target's /metrics. A 5xx answer is
neither admitted nor refused: it is kept apart (`server_errors`), as the target's failure.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from codesync_load.errors import HarnessError
from scenarios.clients.rest import ApiResult
from scenarios.clients.socketio import (
    REFUSAL_WINDOW_S,
    SioDisconnectedAtConnect,
    SioError,
    SioRateLimited,
    SioServerError,
    SioTimeout,
    SocketIOClient,
)
from scenarios.clients.yjs import YjsClient, YjsError, YjsRateLimited
from verify.live.actors import fresh_loopback, fresh_session, fresh_user, user_id
from verify.live.inputs import LiveTarget
from verify.live.server_errors import ServerErrors

LIMITS = {"files": 60, "search": 30, "socketio": 100, "yjs": 100}
WINDOW_S = 60


@dataclass
class LimitRun:
    """What one budget cost: attempts admitted, refused, anything else, and where it is counted."""

    limiter: str
    limit: int
    metrics_url: str  # the process whose /metrics counts this limiter
    series: dict[str, str]  # labels of codesync_rate_limit_hits_total for this user/address
    admitted: int = 0
    refused: int = 0
    refused_before_limit: int = 0
    refusal_shapes: Counter[str] = field(default_factory=Counter)  # how each refusal looked
    other: Counter[str] = field(default_factory=Counter)
    header_problems: list[str] = field(default_factory=list)
    server_errors: ServerErrors = field(default_factory=ServerErrors)  # 5xx answers: the target failed

    @property
    def attempts(self) -> int:
        return self.admitted + self.refused + sum(self.other.values())


def exhaust(target: LiveTarget, limiter: str, extra: int = 3) -> LimitRun:
    """Make `LIMITS[limiter] + extra` attempts with a fresh user/address; see the module docstring."""
    if limiter not in LIMITS:
        raise HarnessError(f"unknown limiter {limiter!r}; use one of {', '.join(LIMITS)}")
    return {"files": _rest, "search": _rest, "socketio": _socketio, "yjs": _yjs}[limiter](target, limiter, extra)


def _headers_problems(result: ApiResult, limit: int) -> list[str]:
    info = result.rate_limit
    if info is None:
        return ["429 without X-RateLimit-* or Retry-After headers"]
    problems = []
    if info.limit != limit:
        problems.append(f"X-RateLimit-Limit {info.limit}, expected {limit}")
    if info.remaining != 0:
        problems.append(f"X-RateLimit-Remaining {info.remaining}, expected 0")
    if info.retry_after != WINDOW_S:
        problems.append(f"Retry-After {info.retry_after}, expected {WINDOW_S}")
    if info.reset_raw is None:
        problems.append("no X-RateLimit-Reset")
    if result.error_code != "RATE_LIMIT":
        problems.append(f"error code {result.error_code}, expected RATE_LIMIT")
    return problems


def _rest(target: LiveTarget, limiter: str, extra: int) -> LimitRun:
    client = fresh_user(target.api_url, f"limit-{limiter}")
    try:
        session_id = fresh_session(client)
        limit = LIMITS[limiter]
        run = LimitRun(limiter, limit, target.api_url, {"type": "API", "user_id": user_id(client)})
        for attempt in range(limit + extra):
            result = client.search(session_id, "needle") if limiter == "search" else client.list_files(session_id)
            if result.ok:
                run.admitted += 1
            elif result.status == 429:
                run.refused += 1
                run.refusal_shapes["429"] += 1
                if attempt < limit:
                    run.refused_before_limit += 1
                for problem in _headers_problems(result, limit):
                    if problem not in run.header_problems:
                        run.header_problems.append(problem)
            elif not run.server_errors.note(result, f"attempt {attempt + 1}"):
                run.other[f"{result.status} {result.error_code}"] += 1
        return run
    finally:
        client.close()


# What one WebSocket connection attempt came to (anything else: the client error's type name).
ADMITTED = "admitted"
SIO_REFUSED_ERROR = "connect_error"  # Socket.IO's connect_error naming the rate limit
SIO_REFUSED_DISCONNECT = "server disconnect at connect"  # CodeSync's: accepted, then disconnected at once
SIO_REFUSED = (SIO_REFUSED_ERROR, SIO_REFUSED_DISCONNECT)
YJS_REFUSED = ("close 1008",)  # the Yjs server's close code for the rate limit
PROBE_S = 3.0  # how long an admitted connection's chat echo may take


def socketio_attempt(api_url: str, token: str | None, uid: str, session_id: str | None = None) -> str:
    """Open and close one Socket.IO connection of user `uid`: ADMITTED, one of SIO_REFUSED or the error's name.

    With `session_id` (a session of `uid`) the attempt joins it on connect and chats: the echo
    or any answer proves admission at once. Without, the client watches REFUSAL_WINDOW_S.
    """
    sio = SocketIOClient(api_url, token, user_id=uid, timeout=10.0)
    try:
        sio.connect(join=session_id, refusal_window=0 if session_id else REFUSAL_WINDOW_S)
        if session_id is not None:
            # The probe decides, not the clock: an answer proves admission, and a server
            # disconnect before any answer is the refusal, however late a loaded machine
            # delivers it (a fixed window miscounted refusals as admissions at load 20+).
            try:
                sio.chat(session_id, timeout=PROBE_S)
                return ADMITTED
            except SioServerError:
                return ADMITTED  # answered with an error: admitted
            except SioError as err:
                if sio.server_disconnect_after is not None:
                    return SIO_REFUSED_DISCONNECT
                if isinstance(err, SioTimeout):
                    return ADMITTED  # silent but still connected: admitted
                raise
        return SIO_REFUSED_DISCONNECT if sio.refused_by_disconnect() else ADMITTED
    except SioDisconnectedAtConnect:
        return SIO_REFUSED_DISCONNECT
    except SioRateLimited:
        return SIO_REFUSED_ERROR
    except SioError as err:
        return type(err).__name__
    finally:
        sio.disconnect()


def yjs_attempt(yjs_url: str, document: str, address: str) -> str:
    """Open and close one Yjs connection from `address`: ADMITTED, YJS_REFUSED[0] or the error's name."""
    client = YjsClient(yjs_url, document, registry=None, source_address=address, sync_timeout=5.0)
    try:
        client.connect()
        return ADMITTED
    except YjsRateLimited:
        return YJS_REFUSED[0]
    except YjsError as err:
        return type(err).__name__
    finally:
        client.close()


def _spend(run: LimitRun, attempt: Callable[[], str], refused: tuple[str, ...], extra: int) -> LimitRun:
    """`limit + extra` connection attempts, each counted as admitted, refused (in any of its shapes) or other."""
    for number in range(run.limit + extra):
        outcome = attempt()
        if outcome == ADMITTED:
            run.admitted += 1
        elif outcome in refused:
            run.refused += 1
            run.refusal_shapes[outcome] += 1
            run.refused_before_limit += number < run.limit
        else:
            run.other[outcome] += 1
    return run


def _socketio(target: LiveTarget, limiter: str, extra: int) -> LimitRun:
    client = fresh_user(target.api_url, "limit-sio")
    try:
        token, uid = client.token, user_id(client)
        session_id = fresh_session(client)
    finally:
        client.close()
    run = LimitRun(limiter, LIMITS[limiter], target.api_url, {"type": "WS", "user_id": uid})
    return _spend(run, lambda: socketio_attempt(target.api_url, token, uid, session_id), SIO_REFUSED, extra)


def _yjs(target: LiveTarget, limiter: str, extra: int) -> LimitRun:
    address = fresh_loopback()
    document = f"verify-limit-{uuid.uuid4().hex[:10]}"
    run = LimitRun(limiter, LIMITS[limiter], target.yjs_http_url, {"type": "WS", "user_id": address})
    return _spend(run, lambda: yjs_attempt(target.yjs_url, document, address), YJS_REFUSED, extra)
