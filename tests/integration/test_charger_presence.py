"""What the gateway keeps of a charger's presence in Redis, read back under
the names the API reads (producers/received_commands.py): held now, and
when it was last heard from, which outlives the connection (the
dashboard's chargers page)."""

from __future__ import annotations

import time
import uuid

from gateway.state import SEEN_TTL_S, GatewayState
from ocpi_hub.bootstrap import redis_client
from producers.received_commands import presence_key, seen_key
from tests.services import Namespace


async def test_presence_and_last_heard_under_the_names_readers_use(namespace: Namespace) -> None:
    settings = namespace.settings
    redis = redis_client(settings)
    prefix = f"{settings.topic_prefix}{uuid.uuid4().hex[:8]}:"
    state = GatewayState(redis, prefix)
    cp = "CP-SEEN"
    try:
        at = time.time()
        await state.present(cp, "gw-1", 30, at)
        assert await redis.get(presence_key(prefix, cp)) == b"gw-1"
        assert 25 <= await redis.ttl(presence_key(prefix, cp)) <= 30
        assert float(await redis.get(seen_key(prefix, cp)) or 0) == at
        assert await redis.ttl(seen_key(prefix, cp)) > SEEN_TTL_S - 10
        await state.absent(cp, "gw-1")
        assert await redis.exists(presence_key(prefix, cp)) == 0
        assert await redis.exists(seen_key(prefix, cp)) == 1  # still known when offline
    finally:
        await redis.delete(presence_key(prefix, cp), seen_key(prefix, cp))
        await redis.aclose()
