"""The Socket.IO connection limit (100 per window per user), in-process and in Redis.

The 101st connection of one user inside the window is refused the way CodeSync refuses it,
accepted and then disconnected at once by the server (the client sees `connect`, then
`disconnect` (python-socketio: "server disconnect"), no connect_error), or with `--socketio-refusal
connect_error` by a connect_error "Rate limit exceeded"; either way it is never admitted and
moves codesync_rate_limit_hits_total{type="WS", user_id} by exactly one; every refused
retry is counted too (rejected attempts stay in the window); another user is unaffected.
With REDIS_URL the window lives in Redis under the twin's key prefix.
"""

from __future__ import annotations

import asyncio

import pytest
import redis

from tests.twin._http import delta, scrape, value
from tests.twin.test_socketio_support import Peer, Refused, User, register_user

LIMIT = 100


async def _connect_and_close(url: str, user: User) -> None:
    peer = Peer(url)
    try:
        await peer.connect(token=user.token)
    finally:
        await peer.close()


async def refusal_of(url: str, user: User) -> str:
    """How an over-limit connection ended: "connect_error: <message>" or "disconnect: <reason>"."""
    peer = Peer(url)
    try:
        await peer.connect(token=user.token)
    except Refused as refused:
        return f"connect_error: {refused.message}"
    try:
        for _ in range(500):  # the server's disconnect follows its connect within moments
            if peer.disconnect_reason is not None:
                return f"disconnect: {peer.disconnect_reason}"
            await asyncio.sleep(0.01)
    finally:
        await peer.close()
    raise AssertionError("connection over the limit was admitted")


REFUSALS = {"disconnect": "disconnect: server disconnect", "connect_error": "connect_error: Rate limit exceeded"}


@pytest.mark.parametrize(
    ("state", "shape"), [("in-process", "disconnect"), ("redis", "disconnect"), ("in-process", "connect_error")]
)
def test_the_101st_connection_in_the_window_is_refused(
    twin_factory, redis_url: str, redis_prefix: str, state: str, shape: str
) -> None:
    env = {"REDIS_URL": redis_url, "CODESYNC_REDIS_PREFIX": redis_prefix} if state == "redis" else {}
    twin = twin_factory(env=env, name=f"siolimit-{state}", extra_args=["--socketio-refusal", shape])
    metrics = twin.api_url + "/metrics"
    alice, bob = register_user(twin.api_url, "Alice"), register_user(twin.api_url, "Bob")
    hits = {"type": "WS", "user_id": alice.id}

    async def scenario() -> None:
        before = scrape(metrics)
        # The channel's series exist at zero before the first connection (initialise_channel).
        for name in ("codesync_websocket_connections_active", "codesync_websocket_connections_total"):
            assert before[(name, frozenset({("type", "socketio")}))] == 0
        for direction in ("inbound", "outbound"):
            labels = frozenset({("type", "socketio"), ("direction", direction)})
            assert before[("codesync_websocket_messages_total", labels)] == 0
        for _ in range(LIMIT):
            await _connect_and_close(twin.api_url, alice)
        at_limit = scrape(metrics)
        assert delta(before, at_limit, "codesync_websocket_connections_total", type="socketio") == LIMIT
        assert value(at_limit, "codesync_rate_limit_hits_total", **hits) == 0

        assert await refusal_of(twin.api_url, alice) == REFUSALS[shape]
        refused_once = scrape(metrics)
        assert delta(at_limit, refused_once, "codesync_rate_limit_hits_total", **hits) == 1
        assert delta(at_limit, refused_once, "codesync_websocket_connections_total", type="socketio") == 0

        assert await refusal_of(twin.api_url, alice) == REFUSALS[shape]
        assert delta(refused_once, scrape(metrics), "codesync_rate_limit_hits_total", **hits) == 1

        await _connect_and_close(twin.api_url, bob)  # the limit is per user
        end = scrape(metrics)
        assert delta(before, end, "codesync_websocket_connections_total", type="socketio") == LIMIT + 1
        assert delta(before, end, "codesync_rate_limit_hits_total", type="WS") == 2
        assert await _settled(metrics, before), "socketio active connections did not return to the start"

    asyncio.run(scenario())

    if state == "redis":
        client = redis.Redis.from_url(redis_url)
        try:
            window = f"{redis_prefix}ratelimit:ws:socketio:{alice.id}"
            assert client.zcard(window) == LIMIT + 2  # every attempt, the refused ones too
            assert client.zcard(f"{redis_prefix}ratelimit:ws:socketio:{bob.id}") == 1
        finally:
            client.close()


async def _settled(metrics: str, before: dict) -> bool:
    """The active gauge returns to its start once the server has seen every close."""
    for _ in range(200):
        now = scrape(metrics)
        if value(now, "codesync_websocket_connections_active", type="socketio") == value(
            before, "codesync_websocket_connections_active", type="socketio"
        ):
            return True
        await asyncio.sleep(0.05)
    return False
