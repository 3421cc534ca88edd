"""Rate limits for the public (unauthenticated) endpoints: a fixed window
per client, counted in Redis so every API process shares the count.

The window of a client starts at its first request; the count and its
expiry are set by one script, so a key never outlives its window.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import redis.asyncio as aioredis

# Count this request; the first one of a window sets the window's expiry.
# Answers the count and the seconds the window has left.
_HIT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    count: int
    # Seconds until the client's window ends (for ``Retry-After``).
    retry_after_s: int


class RateLimiter(Protocol):
    async def hit(self, client: str, limit: int, window_s: int) -> Verdict: ...


class RedisRateLimiter:
    def __init__(self, redis: aioredis.Redis, prefix: str, name: str = "public") -> None:
        self._redis = redis
        self._prefix = prefix
        self._name = name
        self._script: Any = redis.register_script(_HIT)

    def key(self, client: str) -> str:
        return f"{self._prefix}ocpi-hub:ratelimit:{self._name}:{client}"

    async def hit(self, client: str, limit: int, window_s: int) -> Verdict:
        count, ttl = await self._script(keys=[self.key(client)], args=[window_s])
        return Verdict(
            allowed=int(count) <= limit, count=int(count), retry_after_s=max(int(ttl), 1)
        )


class InMemoryRateLimiter:
    """For tests of the HTTP shell without services; the clock is injectable."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.windows: dict[str, tuple[float, int]] = {}

    async def hit(self, client: str, limit: int, window_s: int) -> Verdict:
        now = self._clock()
        ends, count = self.windows.get(client, (now + window_s, 0))
        if now >= ends:
            ends, count = now + window_s, 0
        count += 1
        self.windows[client] = (ends, count)
        left = max(int(-(-(ends - now) // 1)), 1)
        return Verdict(allowed=count <= limit, count=count, retry_after_s=left)
