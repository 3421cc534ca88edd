"""The projections commit a batch's offsets only once the stores have made
it durable (docs/adr/0032), against the real Kafka and document store.

A document store killed after it acknowledged a write may lose it (without a
journaled write concern it keeps it in memory for a moment); if the offsets
were committed by then, no view would ever apply the event again. So the
live runner settles (one journaled write) between applying a batch and
committing it: while settling fails, nothing is committed, and it is
retried until it succeeds.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from pymongo import MongoClient

from ocpi_hub.bootstrap import SETTLED, mysql_engine, views
from ocpi_hub.settings import Settings
from producers.log import KafkaEventLog, ensure_topics
from projections.runner import run_live
from tests.conftest import fresh_namespace
from tests.ocpi_objects import location
from tests.services import Namespace
from tests.unit.factories import put

FAILED_SETTLES = 3


def test_offsets_are_committed_only_after_the_batch_settled(services: Settings) -> None:
    with fresh_namespace(services) as namespace:
        asyncio.run(_settle_before_commit(namespace))


async def _committed(s: Settings) -> int:
    """The projections group's committed offsets, summed over partitions."""
    admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    await admin.start()
    try:
        found = await admin.list_consumer_group_offsets(s.topic("ocpi-hub-projections"))
    finally:
        await admin.close()
    return sum(max(meta.offset, 0) for meta in found.values())


async def _settle_before_commit(namespace: Namespace) -> None:
    s = namespace.settings
    await ensure_topics(s.kafka_bootstrap, s.topic_prefix, 1)
    client: MongoClient[dict[str, Any]] = MongoClient(s.mongo_url, tz_aware=True)
    engine = mysql_engine(s)
    log = KafkaEventLog(s.kafka_bootstrap, s.topic_prefix, s.produce_timeout_s)
    await log.start()
    try:
        live = views(client, s.mongo_db, engine)
        await asyncio.to_thread(live.prepare)
        events = [
            put(location(f"SETTLE{n}"), location_id=f"SETTLE{n}").event for n in range(5)
        ]
        await log.append(events)

        settles: list[int] = []  # the committed offsets each settle saw

        def settle() -> None:
            committed = asyncio.run_coroutine_threadsafe(_committed(s), loop).result(30)
            settles.append(committed)
            if len(settles) <= FAILED_SETTLES:
                raise ConnectionError("the store is away")  # retried, as a store's would be
            live.settle()

        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        task = asyncio.create_task(
            run_live(
                s.kafka_bootstrap,
                s.topic_prefix,
                live.writers,
                batch_size=200,
                poll_ms=50,
                stop=stop,
                retry_initial_s=0.1,
                retry_max_s=0.2,
                settle=settle,
            )
        )
        try:
            deadline = loop.time() + 60
            while await _committed(s) < len(events):
                assert loop.time() < deadline, f"never committed; settles saw {settles}"
                await asyncio.sleep(0.2)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
        # Every failed settle (and the first good one) found nothing
        # committed: the batch waited for it.
        assert len(settles) > FAILED_SETTLES
        assert settles[: FAILED_SETTLES + 1] == [0] * (FAILED_SETTLES + 1), settles
        # The real settle left its journaled write.
        marks = list(client[s.mongo_db][SETTLED].find())
        assert len(marks) == 1 and marks[0]["batches"] >= 1, marks
    finally:
        await log.stop()
        client.close()
        engine.dispose()
