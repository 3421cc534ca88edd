"""The ChargingProfiles receiver's rate bound (TOO_OFTEN) in real Redis:
one request per session and action per interval; other sessions and
actions are not held back, and the next interval takes one again."""

from __future__ import annotations

import asyncio
import uuid

from ocpi_hub.bootstrap import redis_client
from producers.charging_profiles import RedisRequestPace
from schemas.ocpi.charging_profiles import ProfileAction
from tests.services import Namespace


async def test_one_request_per_session_and_action_per_interval(namespace: Namespace) -> None:
    settings = namespace.settings
    redis = redis_client(settings)
    prefix = f"{settings.topic_prefix}{uuid.uuid4().hex[:8]}:"
    pace = RedisRequestPace(redis, 0.5, prefix)
    try:
        assert await pace.too_often("S1", ProfileAction.SET) is False
        assert await pace.too_often("s1", ProfileAction.SET) is True  # CiString: same session
        assert await pace.too_often("S1", ProfileAction.GET) is False
        assert await pace.too_often("S2", ProfileAction.SET) is False
        await asyncio.sleep(0.6)
        assert await pace.too_often("S1", ProfileAction.SET) is False
        unbounded = RedisRequestPace(redis, 0, prefix)
        assert [await unbounded.too_often("S1", ProfileAction.SET) for _ in range(3)] == [False] * 3
    finally:
        keys = [k async for k in redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
