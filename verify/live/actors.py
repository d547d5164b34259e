"""Fresh users, sessions and client addresses, so a check moves only series of its own.

    >>> user = fresh_user(target.api_url)              # registered RestClient, user id in .user
    >>> session_id = fresh_session(user)               # a PUBLIC session it owns
    >>> address = fresh_loopback()                     # e.g. "127.83.12.201"

Rate limits are per user (REST, Socket.IO) and per client IP (Yjs): a check that spends a
budget on a brand-new user or a brand-new loopback address neither disturbs a load run
going on nor is disturbed by it, and its metric delta is exact (field notes: the whole
127.0.0.0/8 is local, so a socket bound to 127.x.y.z is another client to the server).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable

from codesync_load.errors import HarnessError, is_server_error
from scenarios.clients.rest import ApiResult, RestClient
from verify.checks.base import TargetFault
from verify.live.server_errors import answer_text

PASSWORD = "Verify-Pass-1"
_RANDOM = random.SystemRandom()


def fresh_loopback() -> str:
    """A random loopback address outside 127.0.0.0/16 (where load generators usually live)."""
    return f"127.{_RANDOM.randint(1, 254)}.{_RANDOM.randint(0, 255)}.{_RANDOM.randint(1, 254)}"


def fresh_email(tag: str) -> str:
    return f"verify-{tag}-{uuid.uuid4().hex[:12]}@codesync.test"


def _retrying(call: str, attempt: Callable[[], ApiResult], tries: int) -> ApiResult:
    """`attempt()` until it succeeds; injected 5xx (error-burst) are retried, other errors are not."""
    result = attempt()
    for _ in range(tries - 1):
        if result.ok or (result.status and result.status < 500):
            break
        result = attempt()
    if not result.ok:
        message = f"{call} failed on the target ({answer_text(result)}); is the API healthy?"
        if is_server_error(result.status):
            raise TargetFault(message)
        raise HarnessError(message)
    return result


def fresh_user(api_url: str, tag: str = "user", tries: int = 1) -> RestClient:
    """A newly registered user (a logged-in RestClient). `tries` > 1 rides out injected 5xx."""
    client = RestClient(api_url)

    def register() -> ApiResult:
        return client.register(fresh_email(tag), PASSWORD, f"Verify {tag}")

    try:
        _retrying("register", register, tries)
    except BaseException:
        client.close()
        raise
    return client


def user_id(client: RestClient) -> str:
    if not client.user or "id" not in client.user:
        raise HarnessError("register answered without a user id; the target does not follow the contract")
    return str(client.user["id"])


def fresh_session(client: RestClient, name: str = "verify session", tries: int = 1, visibility: str = "PUBLIC") -> str:
    """Create a session (PUBLIC unless told) owned by `client`; returns its id."""
    result = _retrying("create session", lambda: client.create_session(name, visibility=visibility), tries)
    data = result.data or {}
    session = data.get("session", data) if isinstance(data, dict) else {}
    if not isinstance(session, dict) or "id" not in session:
        raise HarnessError("POST /api/sessions answered without a session id; the target does not follow the contract")
    return str(session["id"])
