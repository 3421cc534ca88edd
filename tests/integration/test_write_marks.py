"""Write marks in the real Redis: the highest offset per partition wins,
whatever order concurrent requests record them in; marks expire."""

from __future__ import annotations

import asyncio
import uuid

import redis.asyncio as aioredis

from projections.write_marks import RedisWriteMarks
from tests.services import Namespace


async def test_marks_keep_the_highest_offset_per_partition(namespace: Namespace) -> None:
    client = aioredis.Redis.from_url(namespace.settings.redis_url)
    try:
        marks = RedisWriteMarks(client, namespace.settings.topic_prefix, ttl_s=30)
        key = f"NL/ABC/{uuid.uuid4().hex}"
        offsets = [5, 90, 17, 64, 3]
        await asyncio.gather(*(marks.mark(key, 2, o) for o in offsets))
        await marks.mark(key, 0, 7)
        assert await marks.marks(key) == {2: 90, 0: 7}
        assert await marks.marks(f"NL/ABC/{uuid.uuid4().hex}") == {}
        ttl = await client.ttl(f"{namespace.settings.topic_prefix}ocpi-hub:written:{key}")
        assert 0 < ttl <= 30
    finally:
        await client.aclose()
