"""Write marks: per location, the Kafka position of the latest write the
API acknowledged, so that a read can wait until the views hold it
(api/consistency.py, docs/adr/0009). Kept in Redis, shared by every API
process; a tiny script raises a mark and never lowers it.
"""

from __future__ import annotations

from typing import Any, Protocol

import redis.asyncio as aioredis

# Keep the higher offset per partition; refresh the expiry.
_MARK = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if (not current) or tonumber(current) < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
"""


class WriteMarks(Protocol):
    async def mark(self, location_key: str, partition: int, offset: int) -> None: ...

    async def marks(self, location_key: str) -> dict[int, int]: ...


class RedisWriteMarks:
    def __init__(self, redis: aioredis.Redis, prefix: str, ttl_s: int = 600) -> None:
        self._redis = redis
        self._prefix = prefix
        self._ttl_s = ttl_s
        self._script: Any = redis.register_script(_MARK)

    def _key(self, location_key: str) -> str:
        return f"{self._prefix}ocpi-hub:written:{location_key}"

    async def mark(self, location_key: str, partition: int, offset: int) -> None:
        await self._script(keys=[self._key(location_key)], args=[partition, offset, self._ttl_s])

    async def marks(self, location_key: str) -> dict[int, int]:
        raw: dict[bytes, bytes] = await self._redis.hgetall(self._key(location_key))  # type: ignore[assignment]
        return {int(p): int(o) for p, o in raw.items()}


class InMemoryWriteMarks:
    """For tests of the HTTP shell without services."""

    def __init__(self) -> None:
        self.held: dict[str, dict[int, int]] = {}

    async def mark(self, location_key: str, partition: int, offset: int) -> None:
        held = self.held.setdefault(location_key, {})
        held[partition] = max(offset, held.get(partition, -1))

    async def marks(self, location_key: str) -> dict[int, int]:
        return dict(self.held.get(location_key, {}))
