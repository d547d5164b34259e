"""Sliding-window rate limits, in Redis sorted sets or in-process, as CodeSync counts them.

    >>> limiter = await open_limiter(config)
    >>> decision = await limiter.hit(f"api:files:{user_id}", limit=60, window_s=60)
    >>> decision.allowed, decision.remaining, decision.reset_at
    (True, 59, 1796190000.0)
    >>> await limiter.close()

Every attempt is recorded, the rejected ones too (CodeSync's contract says so): a client
that keeps hammering stays limited until it pauses for a full window. An attempt is
allowed while the attempts in the last `window_s` seconds, itself included, number at
most `limit`. Keys with different limits may share a window (files 60 and search 30 on one
key per user), because the limit is a parameter of each hit, not of the key.

With REDIS_URL set, windows live in Redis under `config.redis_prefix` (shared by every
twin process using that prefix); otherwise in a dict of this process.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from codesync_load.errors import HarnessError
from twin.config import TwinConfig


@dataclass(frozen=True)
class LimitDecision:
    """The verdict on one attempt, with what the X-RateLimit-* headers need."""

    allowed: bool
    count: int
    limit: int
    remaining: int
    reset_at: float

    def headers(self) -> dict[str, str]:
        """X-RateLimit-Limit/Remaining/Reset (reset as epoch seconds, rounded up)."""
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(math.ceil(self.reset_at)),
        }


def _decide(count: int, limit: int, oldest: float, window_s: float) -> LimitDecision:
    return LimitDecision(
        allowed=count <= limit,
        count=count,
        limit=limit,
        remaining=max(0, limit - count),
        reset_at=oldest + window_s,
    )


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window_s: float) -> LimitDecision:
        """Record one attempt on `key` and say whether it is within `limit` per `window_s`."""

    async def close(self) -> None:
        """Release connections."""


class MemoryRateLimiter:
    """Windows as deques of attempt times, for a twin without Redis.

    Every `SWEEP_EVERY` hits, keys whose newest attempt left the longest window seen are
    dropped, so a long load test with many users does not grow the dict without bound.
    """

    SWEEP_EVERY = 1024

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock  # injectable: tests move time instead of sleeping
        self._windows: dict[str, deque[float]] = {}
        self._lock = asyncio.Lock()
        self._hits = 0
        self._longest_window = 0.0

    async def hit(self, key: str, limit: int, window_s: float) -> LimitDecision:
        now = self._clock()
        async with self._lock:
            self._hits += 1
            self._longest_window = max(self._longest_window, window_s)
            if self._hits % self.SWEEP_EVERY == 0:
                self._sweep(now)
            window = self._windows.setdefault(key, deque())
            while window and window[0] <= now - window_s:
                window.popleft()
            window.append(now)
            return _decide(len(window), limit, window[0], window_s)

    def _sweep(self, now: float) -> None:
        horizon = now - self._longest_window
        for key in [k for k, w in self._windows.items() if not w or w[-1] <= horizon]:
            del self._windows[key]

    def keys(self) -> int:
        """How many keys are held (for tests of the sweep)."""
        return len(self._windows)

    async def close(self) -> None:
        self._windows.clear()


class RedisRateLimiter:
    """Windows as Redis sorted sets (member = unique attempt id, score = time), one MULTI each."""

    def __init__(self, client, prefix: str, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.prefix = prefix
        self._clock = clock  # the attempt times (scores) come from it; injectable for tests

    @classmethod
    async def open(cls, url: str, prefix: str, clock: Callable[[], float] = time.time) -> RedisRateLimiter:
        import redis.asyncio as aioredis
        from redis.exceptions import RedisError

        try:
            client = aioredis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
        except ValueError as err:
            raise HarnessError(f"REDIS_URL {url!r} is not a Redis URL ({err}); use redis://host:port/db") from None
        try:
            await client.ping()
        except (RedisError, OSError) as err:
            await client.aclose()
            reason = " ".join(str(err).split()) or type(err).__name__
            raise HarnessError(f"cannot connect to Redis at {_redacted(url)} ({reason}); check REDIS_URL") from None
        return cls(client, prefix, clock)

    async def hit(self, key: str, limit: int, window_s: float) -> LimitDecision:
        now = self._clock()
        full_key = f"{self.prefix}ratelimit:{key}"
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(full_key, "-inf", now - window_s)
            pipe.zadd(full_key, {f"{now:.6f}:{uuid.uuid4().hex[:8]}": now})
            pipe.zcard(full_key)
            pipe.zrange(full_key, 0, 0, withscores=True)
            pipe.pexpire(full_key, math.ceil(window_s * 1000) + 1000)
            _, _, count, oldest, _ = await pipe.execute()
        oldest_at = float(oldest[0][1]) if oldest else now
        return _decide(int(count), limit, oldest_at, window_s)

    async def close(self) -> None:
        await self.client.aclose()


def _redacted(url: str) -> str:
    """The URL without a password."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = rest.rsplit("@", 1)[1]
    return f"{scheme}{sep}{rest}"


async def open_limiter(config: TwinConfig, clock: Callable[[], float] = time.time) -> RateLimiter:
    """Redis-backed when `config.redis_url` is set (fails as one line if unreachable), else in-process.

    `clock` gives the attempt times (wall-clock seconds by default); tests pass one they move.
    """
    if config.redis_url:
        return await RedisRateLimiter.open(config.redis_url, config.redis_prefix, clock)
    return MemoryRateLimiter(clock)
