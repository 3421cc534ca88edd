"""The platform's Redis client against the real Redis: a burst of commands
larger than its pool waits for free connections instead of failing (the
gateway's presence refreshes under thousands of chargers, bench.chargers)."""

from __future__ import annotations

import asyncio
import uuid

from ocpi_hub.bootstrap import redis_client
from tests.services import Namespace


async def test_a_burst_beyond_the_pool_waits_for_connections(namespace: Namespace) -> None:
    settings = namespace.settings.model_copy(update={"redis_max_connections": 2})
    client = redis_client(settings)
    prefix = f"{settings.topic_prefix}pool-test:{uuid.uuid4().hex}:"
    keys = [f"{prefix}{n}" for n in range(50)]
    try:
        # 50 commands in flight on 2 connections: the default pool would
        # raise MaxConnectionsError for 48 of them.
        await asyncio.gather(*(client.set(k, "x", ex=60) for k in keys))
        assert await client.mget(keys) == [b"x"] * 50
        assert client.connection_pool.max_connections == 2
    finally:
        await client.delete(*keys)
        await client.aclose()
