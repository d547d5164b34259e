"""The sliding-window limiter, in-process and on a real Redis under this run's key prefix."""

from __future__ import annotations

import asyncio
import math
import time

import pytest
import redis

from codesync_load.errors import HarnessError
from twin.config import TwinConfig
from twin.ratelimit import MemoryRateLimiter, RedisRateLimiter, open_limiter


@pytest.fixture(params=["memory", "redis"])
def config(request: pytest.FixtureRequest) -> TwinConfig:
    if request.param == "memory":
        return TwinConfig()
    return TwinConfig(
        redis_url=request.getfixturevalue("redis_url"), redis_prefix=request.getfixturevalue("redis_prefix")
    )


def test_open_limiter_picks_the_backend(config: TwinConfig) -> None:
    async def scenario() -> type:
        limiter = await open_limiter(config)
        await limiter.close()
        return type(limiter)

    expected = RedisRateLimiter if config.redis_url else MemoryRateLimiter
    assert asyncio.run(scenario()) is expected


def test_limit_reached_exactly_and_rejections_are_recorded(config: TwinConfig) -> None:
    async def scenario() -> None:
        limiter = await open_limiter(config)
        try:
            started = time.time()
            decisions = [await limiter.hit("api:files:u1", 60, 60.0) for _ in range(62)]
            assert [d.allowed for d in decisions] == [True] * 60 + [False, False]
            assert [d.count for d in decisions[:3]] == [1, 2, 3]
            assert decisions[0].remaining == 59 and decisions[59].remaining == 0 and decisions[61].remaining == 0
            assert decisions[61].count == 62  # the rejected ones count too
            assert started + 60 <= decisions[61].reset_at <= time.time() + 60
            assert decisions[61].headers() == {
                "X-RateLimit-Limit": "60",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(math.ceil(decisions[61].reset_at)),
            }
            # A search (limit 30) on the same key is refused already; another key is untouched.
            assert not (await limiter.hit("api:files:u1", 30, 60.0)).allowed
            other = await limiter.hit("api:files:u2", 60, 60.0)
            assert other.allowed and other.count == 1
        finally:
            await limiter.close()

    asyncio.run(scenario())


class Clock:
    """A clock the test moves: the limiter reads attempt times from it instead of the wall clock,
    so window edges are exact instants, not sleeps raced with 50 ms margins."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_window_slides_but_hammering_keeps_it_shut(config: TwinConfig) -> None:
    clock = Clock()

    async def scenario() -> None:
        limiter = await open_limiter(config, clock)
        try:
            assert (await limiter.hit("slide", 2, 0.4)).allowed
            assert (await limiter.hit("slide", 2, 0.4)).allowed
            # Retrying every 0.1 s for 1 s (2.5 windows): each rejected retry refills the window.
            for _ in range(10):
                assert not (await limiter.hit("slide", 2, 0.4)).allowed
                clock.now += 0.1
            # 0.3 s after the last retry it is still in the 0.4 s window: refused (and recorded).
            clock.now += 0.2  # the loop already moved 0.1 past the last retry
            assert not (await limiter.hit("slide", 2, 0.4)).allowed
            # Exactly one window later that attempt is out (an attempt at now - window no longer counts).
            clock.now += 0.4
            decision = await limiter.hit("slide", 2, 0.4)
            assert decision.allowed and decision.count == 1
        finally:
            await limiter.close()

    asyncio.run(scenario())


def test_redis_keys_live_under_the_prefix_and_expire(redis_url: str, redis_prefix: str) -> None:
    async def scenario() -> None:
        limiter = await open_limiter(TwinConfig(redis_url=redis_url, redis_prefix=redis_prefix))
        try:
            await limiter.hit("api:files:someone", 60, 60.0)
            await limiter.hit("api:files:someone", 60, 60.0)
        finally:
            await limiter.close()

    asyncio.run(scenario())
    client = redis.Redis.from_url(redis_url)
    try:
        keys = [k.decode() for k in client.scan_iter(match=f"{redis_prefix}*")]
        assert keys == [f"{redis_prefix}ratelimit:api:files:someone"]
        assert client.zcard(keys[0]) == 2
        assert 0 < client.pttl(keys[0]) <= 61_000
    finally:
        client.close()


@pytest.mark.parametrize("url", ["redis://127.0.0.1:1/0", "redis://:hunter2@127.0.0.1:1/0", "http://nope"])
def test_unreachable_redis_is_one_line(url: str) -> None:
    with pytest.raises(HarnessError) as info:
        asyncio.run(open_limiter(TwinConfig(redis_url=url)))
    message = str(info.value)
    assert "REDIS_URL" in message and "\n" not in message and "hunter2" not in message


def test_memory_limiter_forgets_idle_keys() -> None:
    clock = Clock()

    async def scenario() -> tuple[int, int]:
        limiter = MemoryRateLimiter(clock)
        for i in range(100):
            await limiter.hit(f"idle:{i}", 5, 0.2)
        held = limiter.keys()
        clock.now += 0.2  # every one of those windows has passed (an attempt at exactly now - window is out)
        for _ in range(MemoryRateLimiter.SWEEP_EVERY - 100):
            await limiter.hit("busy", 10**6, 0.2)
        return held, limiter.keys()

    held, after_sweep = asyncio.run(scenario())
    assert held == 100
    assert after_sweep == 1  # only "busy" is left
