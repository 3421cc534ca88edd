"""The charts' samples in real Redis (api/admin/charts.py): one process
claims each interval, samples are kept newest first and read oldest
first, and the sampler takes one per claimed interval."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import redis.asyncio as aioredis

from api.admin.charts import ChartSamples, sample_forever
from tests.services import Namespace


async def test_one_sample_per_interval_whoever_asks(namespace: Namespace) -> None:
    s = namespace.settings
    client = aioredis.Redis.from_url(s.redis_url)
    # Keys of this test's own: an app another test ran in the namespace keeps
    # real samples under the namespace's prefix.
    prefix = f"{s.topic_prefix}charts-{uuid.uuid4().hex[:8]}:"
    try:
        first = ChartSamples(client, prefix, interval_s=60)
        second = ChartSamples(client, prefix, interval_s=60)  # another API process
        assert await first.claim(6000.0)
        assert not await second.claim(6030.0)  # the same interval: taken
        assert await second.claim(6060.0)  # the next one
        await first.add({"at": 6000.0, "statuses": {"AVAILABLE": 1}})
        await second.add({"at": 6060.0, "statuses": {"AVAILABLE": 2}})
        assert [x["at"] for x in await first.recent()] == [6000.0, 6060.0]

        # The loop: a short interval, two processes, samples only from claims.
        fast = [ChartSamples(client, prefix + "fast:", interval_s=1) for _ in range(2)]
        taken: list[int] = []

        async def take() -> dict[str, Any]:
            taken.append(1)
            return {"statuses": {}}

        stop = asyncio.Event()
        loops = [asyncio.create_task(sample_forever(f, take, 1, stop)) for f in fast]
        await asyncio.sleep(2.5)
        stop.set()
        await asyncio.gather(*loops)
        kept = await fast[0].recent()
        assert len(kept) == len(taken) and 2 <= len(kept) <= 4, (len(kept), len(taken))
        seconds = [int(x["at"]) for x in kept]
        assert len(set(seconds)) == len(seconds)  # never two in one interval
    finally:
        await client.aclose()
