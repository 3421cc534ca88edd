"""Replay against the real broker: it stops at the end it saw, whatever is
written meanwhile, never stalls on a finished partition, and reads the
topics' partitions a group at a time."""

from __future__ import annotations

import asyncio
import gc
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaProducer

from ocpi_hub.settings import Settings
from producers.log import ensure_topics
from projections.position import Record
from projections.runner import OBJECTS_PER_EVENT, replay
from schemas.events import EvseStatusResolved, Party, serialize_event
from schemas.events.locations import EvseStatusResolvedPayload, location_key
from schemas.ocpi.locations import EvseStatus
from schemas.topics import EVSE_STATUS, LOCATIONS
from tests.conftest import fresh_namespace
from tests.services import Namespace

T0 = datetime(2026, 4, 1, tzinfo=UTC)


class Collect:
    """A Writer (the port) that keeps what it is given."""

    name = "collect"

    def __init__(self) -> None:
        self.records: list[Record[object]] = []

    def prepare(self) -> None:
        pass

    def wipe(self) -> None:
        self.records.clear()

    def apply(self, records: Sequence[Record[object]]) -> int:
        self.records += records
        return len(records)


def resolved(i: int) -> EvseStatusResolved:
    return EvseStatusResolved(
        event_id=uuid.uuid4(),
        aggregate_key=location_key("NL", "ABC", f"L{i}"),
        occurred_at=T0,
        recorded_at=T0,
        source=Party(country_code="NL", party_id="ABC"),
        correlation_id="c",
        payload=EvseStatusResolvedPayload(
            country_code="NL",
            party_id="ABC",
            location_id=f"L{i}",
            evse_uid="E1",
            status=EvseStatus.AVAILABLE,
            last_updated=T0 + timedelta(seconds=i),
            reported_status=EvseStatus.AVAILABLE,
        ),
    )


async def produce(bootstrap: str, topic: str, partition: int, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(count):
            await producer.send_and_wait(topic, serialize_event(resolved(i)), partition=partition)
    finally:
        await producer.stop()


def test_replay_stops_at_its_snapshot_while_writes_go_on(services: Settings) -> None:
    with fresh_namespace(services) as namespace:
        asyncio.run(_replay_while_writing(namespace))


async def _replay_while_writing(namespace: Namespace) -> None:
    s = namespace.settings
    await ensure_topics(s.kafka_bootstrap, s.topic_prefix, 1)
    topic = s.topic(EVSE_STATUS.name)
    await produce(s.kafka_bootstrap, topic, 0, 1)  # a partition that finishes at once
    await produce(s.kafka_bootstrap, topic, 1, 40)  # one that needs many small batches

    later = threading.Event()

    def on_progress(done: int, total: int) -> None:
        # Right after the snapshot: more events land on the finished partition.
        if not later.is_set():
            later.set()
            threading.Thread(
                target=lambda: asyncio.run(produce(s.kafka_bootstrap, topic, 0, 30))
            ).start()

    writer = Collect()
    count = await asyncio.wait_for(
        replay(s.kafka_bootstrap, s.topic_prefix, [writer], batch_size=1, on_progress=on_progress),
        timeout=60,
    )
    assert count == 41  # what the snapshot held, not what came after
    by_partition = {p: [r.offset for r in writer.records if r.partition == p] for p in (0, 1)}
    assert by_partition[0] == [0]
    assert by_partition[1] == list(range(40))


def test_replay_reads_one_partition_group_after_the_other(services: Settings) -> None:
    with fresh_namespace(services) as namespace:
        asyncio.run(_replay_by_groups(namespace))


async def _replay_by_groups(namespace: Namespace) -> None:
    s = namespace.settings
    await ensure_topics(s.kafka_bootstrap, s.topic_prefix, 1)
    # The reader does not look at what the events are: the same ones go to
    # both topics that a location's events use.
    topics = [s.topic(spec.name) for spec in (LOCATIONS, EVSE_STATUS)]
    for partition in (2, 0, 1):
        for topic in topics:
            await produce(s.kafka_bootstrap, topic, partition, 5)
    writer = Collect()
    # Batches smaller than a group, so some batches span two groups.
    count = await asyncio.wait_for(
        replay(s.kafka_bootstrap, s.topic_prefix, [writer], batch_size=4), timeout=60
    )
    assert count == 30
    order = [r.partition for r in writer.records]
    assert order == sorted(order)  # no record of partition n+1 before the last of n
    for topic in (LOCATIONS.name, EVSE_STATUS.name):
        for partition in (0, 1, 2):
            offsets = [
                r.offset for r in writer.records if (r.topic, r.partition) == (topic, partition)
            ]
            assert offsets == list(range(5)), (topic, partition)


class Thresholds(Collect):
    """Also notes the collector's young threshold each batch is written under."""

    def __init__(self) -> None:
        super().__init__()
        self.young: list[int] = []

    def apply(self, records: Sequence[Record[object]]) -> int:
        self.young.append(gc.get_threshold()[0])
        return super().apply(records)


def test_replay_collects_young_garbage_once_per_two_batches_held(services: Settings) -> None:
    with fresh_namespace(services) as namespace:
        asyncio.run(_replay_thresholds(namespace))


async def _replay_thresholds(namespace: Namespace) -> None:
    s = namespace.settings
    await ensure_topics(s.kafka_bootstrap, s.topic_prefix, 1)
    await produce(s.kafka_bootstrap, s.topic(EVSE_STATUS.name), 0, 3)
    before = gc.get_threshold()
    writer = Thresholds()
    count = await asyncio.wait_for(
        replay(s.kafka_bootstrap, s.topic_prefix, [writer], batch_size=50_000), timeout=60
    )
    assert count == 3 and writer.young
    assert set(writer.young) == {2 * 50_000 * OBJECTS_PER_EVENT}
    assert gc.get_threshold() == before
