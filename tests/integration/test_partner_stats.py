"""The partners page's numbers in real Redis (producers/partner_stats.py):
what push lanes save and the API stamps is what the page reads, per
partner and module, under the deployment's prefix."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from producers.partner_stats import PullStamps, PushTally, RedisPushStats, stats_key
from tests.services import Namespace


async def test_saved_tallies_and_stamped_pulls_read_back_per_partner(
    namespace: Namespace,
) -> None:
    s = namespace.settings
    client = aioredis.Redis.from_url(s.redis_url)
    try:
        stats = RedisPushStats(client, s.topic_prefix)
        tally = PushTally()
        tally.ok(1000.0)
        tally.failed(1010.0, "retrying", 503, None, None)
        await stats.save("P1", "cdrs", tally)
        assert not tally.dirty
        tally.ok(1020.0)
        await stats.save("P1", "cdrs", tally)  # the newer tally replaces the fields
        await stats.save("P1", "locations", PushTally(delivered=0))
        stamps = PullStamps(stats)
        stamps.stamp_soon("P1", "tariffs")
        stamps.stamp_soon("P1", "tariffs")  # within the interval: not written again
        for _ in range(50):
            read = await stats.read(["P1", "P2"])
            if "pull-tariffs" in read["P1"]:
                break
            await asyncio.sleep(0.02)
        assert read["P2"] == {}
        p1 = read["P1"]
        assert p1["cdrs"] == {
            "delivered": 2,
            "failures": 1,
            "repaired": 0,
            "last_delivered_at": 1020.0,
            "last_failure_at": 1010.0,
            "last_failure": "retrying: HTTP 503",
        }
        assert p1["locations"] == {"delivered": 0, "failures": 0, "repaired": 0}
        assert set(p1["pull-tariffs"]) == {"last_pulled_at"}
        # Kept under the deployment's prefix, and forgotten some day.
        key = stats_key(s.topic_prefix, "P1")
        assert key.startswith(s.topic_prefix)
        assert 0 < await client.ttl(key) <= 90 * 24 * 3600
    finally:
        await client.aclose()
