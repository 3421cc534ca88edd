"""The projections commit a batch's offsets only once the stores have made
it durable (docs/adr/0032), against the real Kafka and document store.

A document store killed after it acknowledged a write may lose it (without a
journaled write concern it keeps it in memory for a moment); if the offsets
were committed by then, no view would ever apply the event again. So the
live runner settles (one journaled write) between applying a batch and
committing it. A settle that fails for a store that is away ends the run
with nothing committed (the process starts it again, afresh); the next run
applies the batch again and commits it once it has settled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from pymongo import MongoClient

from ocpi_hub.bootstrap import SETTLED, mysql_engine, views
from ocpi_hub.settings import Settings
from producers.log import KafkaEventLog, ensure_topics
from projections.dead_letters import StoreInterruptedError
from projections.runner import replay, run_live
from tests.conftest import fresh_namespace
from tests.ocpi_objects import location
from tests.services import Namespace
from tests.unit.factories import put


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
        events = [put(location(f"SETTLE{n}"), location_id=f"SETTLE{n}").event for n in range(5)]
        await log.append(events)

        loop = asyncio.get_running_loop()
        settles: list[int] = []  # the committed offsets each settle saw

        def away() -> None:
            settles.append(asyncio.run_coroutine_threadsafe(_committed(s), loop).result(30))
            raise ConnectionError("the store is away")

        def runner(settle: Callable[[], None], stop: asyncio.Event) -> asyncio.Task[None]:
            return asyncio.create_task(
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

        # The settle fails: the run ends by itself, nothing committed.
        with pytest.raises(StoreInterruptedError):
            await asyncio.wait_for(runner(away, asyncio.Event()), 60)
        assert settles == [0]
        assert await _committed(s) == 0

        # Started again (as the process does): the batch is applied again,
        # settles and is committed.
        stop = asyncio.Event()
        again = runner(live.settle, stop)
        try:
            deadline = loop.time() + 60
            while await _committed(s) < len(events):
                assert loop.time() < deadline, "never committed"
                assert not again.done(), again
                await asyncio.sleep(0.2)
        finally:
            stop.set()
            await asyncio.wait_for(again, 30)
        # The real settle left its journaled write.
        marks = list(client[s.mongo_db][SETTLED].find())
        assert len(marks) == 1 and marks[0]["batches"] >= 1, marks
    finally:
        await log.stop()
        client.close()
        engine.dispose()


def test_a_replay_settles_each_batch_and_fails_when_a_store_was_away(services: Settings) -> None:
    with fresh_namespace(services) as namespace:
        asyncio.run(_replay_settles(namespace))


async def _replay_settles(namespace: Namespace) -> None:
    s = namespace.settings
    await ensure_topics(s.kafka_bootstrap, s.topic_prefix, 1)
    client: MongoClient[dict[str, Any]] = MongoClient(s.mongo_url, tz_aware=True)
    engine = mysql_engine(s)
    log = KafkaEventLog(s.kafka_bootstrap, s.topic_prefix, s.produce_timeout_s)
    await log.start()
    try:
        target = views(client, s.mongo_db, engine)
        await asyncio.to_thread(target.prepare)
        events = [put(location(f"REPLAY{n}"), location_id=f"REPLAY{n}").event for n in range(5)]
        await log.append(events)

        def away() -> None:
            raise ConnectionError("the store is away")

        # A settle that fails: the replay does not report the views complete.
        with pytest.raises(StoreInterruptedError):
            await replay(
                s.kafka_bootstrap, s.topic_prefix, target.writers, batch_size=2, settle=away
            )

        # With the real settle, every batch leaves its journaled write.
        done = await replay(
            s.kafka_bootstrap, s.topic_prefix, target.writers, batch_size=2, settle=target.settle
        )
        assert done == len(events)
        marks = list(client[s.mongo_db][SETTLED].find())
        assert len(marks) == 1 and marks[0]["batches"] >= 1, marks
        assert client[s.mongo_db]["locations"].count_documents({}) == len(events)
    finally:
        await log.stop()
        client.close()
        engine.dispose()
