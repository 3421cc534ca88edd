"""Read-your-writes for location writes (docs/adr/0009).

The API judges a write against the MongoDB view, which the projections
process fills from Kafka a little later. A partner that PUTs a location and
PATCHes it a moment after must not be told the location is unknown, so each
acknowledged write leaves a mark, per location, of the Kafka position it got
(``WriteMarks``, in Redis, shared by every API process). Before the API reads
a location to judge a write or to answer a GET, it waits until the view has
applied everything up to the marks. The wait is usually one projection
batch; if the view does not catch up within the timeout, the answer is OCPI
3000 (retry), never a wrong 2003.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

import redis.asyncio as aioredis

from api.errors import OcpiError
from projections.mongo.locations import LocationViewQuery
from projections.position import position_field
from schemas.events.locations import location_key
from schemas.ocpi.status_codes import OcpiStatus
from schemas.topics import LOCATIONS

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


async def read_own_writes(
    view: LocationViewQuery,
    marks: WriteMarks,
    country_code: str,
    party_id: str,
    location_id: str,
    *,
    timeout_s: float,
) -> dict[str, Any] | None:
    """The served location once the view holds every acknowledged write to it."""
    key = location_key(country_code, party_id, location_id)
    wanted = await marks.marks(key)
    deadline = time.monotonic() + timeout_s
    delay = 0.01
    while True:
        location, positions = await asyncio.to_thread(view.read, key)
        if all(
            positions.get(position_field(LOCATIONS.name, p), -1) >= o for p, o in wanted.items()
        ):
            return location
        if time.monotonic() >= deadline:
            raise OcpiError(
                OcpiStatus.SERVER_ERROR,
                "an earlier update of this location is still being recorded; retry",
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)
