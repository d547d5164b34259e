"""Socket.IO handshake authentication against a real twin: who is refused, and with what words.

A refused handshake reaches the client as connect_error {message}; it is never admitted, so
it moves no connection counter. A token is taken from `auth` or, as a browser sends it,
from the `token` cookie of the handshake request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import jwt
import pytest

from codesync_load.twin_process import TwinProcess
from tests.twin._http import delta, isolated_twin, scrape
from tests.twin.test_socketio_support import Peer, Refused, User, close_all, register_user

JWT_SECRET = "s" * 40


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwinProcess]:
    with isolated_twin(tmp_path_factory.mktemp("sioauth"), "sioauth", JWT_SECRET=JWT_SECRET) as twin:
        yield twin


@pytest.fixture(scope="module")
def alice(api: TwinProcess) -> User:
    return register_user(api.api_url, "Alice")


def _forged(secret: str, user_id: str, **extra: object) -> str:
    now = int(time.time())
    claims = {"userId": user_id, "email": "x@example.com", "role": "USER", "iat": now, "exp": now + 3600, **extra}
    return jwt.encode(claims, secret, algorithm="HS256")


def _refusal(url: str, **connect: object) -> str:
    async def attempt() -> str:
        peer = Peer(url)
        try:
            await peer.connect(**connect)
        except Refused as refused:
            return refused.message
        finally:
            await peer.close()
        raise AssertionError(f"connection with {connect} was admitted")

    return asyncio.run(attempt())


@pytest.mark.parametrize(
    ("connect", "message"),
    [
        ({}, "Authentication error: token required"),
        ({"auth": "not-an-object"}, "Authentication error: token required"),
        ({"auth": {"token": ""}}, "Authentication error: token required"),
        ({"auth": {"token": 12345}}, "Authentication error: token required"),
        ({"token": "garbage.not.jwt"}, "Authentication error: invalid token"),
        ({"headers": {"Cookie": "csrf-token=abc; token=garbage"}}, "Authentication error: invalid token"),
    ],
    ids=["no-auth", "auth-not-object", "empty-token", "token-not-string", "garbage-token", "garbage-cookie"],
)
def test_missing_or_malformed_token_is_refused(api: TwinProcess, connect: dict, message: str) -> None:
    before = scrape(api.api_url + "/metrics")
    assert _refusal(api.api_url, **connect) == message
    after = scrape(api.api_url + "/metrics")
    assert delta(before, after, "codesync_websocket_connections_total", type="socketio") == 0
    assert delta(before, after, "codesync_rate_limit_hits_total") == 0


def test_token_signed_with_another_secret_or_expired_is_refused(api: TwinProcess, alice: User) -> None:
    assert _refusal(api.api_url, token=_forged("other" * 10, alice.id)) == "Authentication error: invalid token"
    expired = _forged(JWT_SECRET, alice.id, exp=int(time.time()) - 10)
    assert _refusal(api.api_url, token=expired) == "Authentication error: invalid token"


def test_token_of_unknown_user_is_refused(api: TwinProcess) -> None:
    token = _forged(JWT_SECRET, "cnosuchuser0000000000000")
    assert _refusal(api.api_url, token=token) == "Authentication error: user not found"


def test_logged_out_token_is_refused(api: TwinProcess) -> None:
    bob = register_user(api.api_url, "Bob")
    assert bob.api.post("/api/auth/logout").status_code == 200
    assert _refusal(api.api_url, token=bob.token) == "Authentication error: invalid token"


def test_valid_token_in_auth_or_cookie_is_admitted(api: TwinProcess, alice: User) -> None:
    before = scrape(api.api_url + "/metrics")

    async def scenario() -> None:
        by_auth, by_cookie = Peer(api.api_url), Peer(api.api_url)
        try:
            await by_auth.connect(token=alice.token)
            # CodeSync's CORS setting shapes headers only: a foreign Origin is not refused.
            await by_cookie.connect(
                headers={"Cookie": f"csrf-token=abc; token={alice.token}", "Origin": "http://elsewhere.example"}
            )
            session_id = alice.api.create_session()["id"]
            echo = await by_cookie.join(session_id)
            assert echo["userId"] == alice.id
            mid = scrape(api.api_url + "/metrics")
            assert delta(before, mid, "codesync_websocket_connections_total", type="socketio") == 2
            assert delta(before, mid, "codesync_websocket_connections_active", type="socketio") == 2
        finally:
            await close_all(by_auth, by_cookie)

    asyncio.run(scenario())
