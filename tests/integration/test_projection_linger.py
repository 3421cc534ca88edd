"""The live projections gather what arrives shortly after a poll into the
same batch (``linger_ms``), against the real Kafka: under a stream of events
a batch holds more events per document and pays its fixed costs less often."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from ocpi_hub.settings import Settings
from projections.runner import _gathered
from tests.conftest import fresh_namespace


def test_a_batch_takes_in_what_arrives_within_the_linger(services: Settings) -> None:
    with fresh_namespace(services) as namespace:
        asyncio.run(_linger(namespace.settings))


async def _linger(s: Settings) -> None:
    topic = s.topic_prefix + "linger-test"
    admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, acks="all")
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=s.kafka_bootstrap, auto_offset_reset="earliest"
    )
    await producer.start()
    await producer.send_and_wait(topic, b"first")
    await consumer.start()
    try:

        async def later(delay_s: float, value: bytes) -> None:
            await asyncio.sleep(delay_s)
            await producer.send_and_wait(topic, value)

        async def values(linger_ms: int, batch_size: int = 100) -> list[bytes]:
            batch = await _gathered(consumer, 5_000, batch_size, linger_ms)
            return [m.value for messages in batch.values() for m in messages]

        assert await values(0) == [b"first"]
        # What comes within the linger of the first poll joins its batch...
        sent = asyncio.gather(later(0.0, b"c"), later(0.3, b"d"), later(4.0, b"late"))
        assert await values(1_500) == [b"c", b"d"]
        # ...what comes after it does not, and a full batch stops gathering.
        await sent
        assert await values(1_500) == [b"late"]
        for n in range(5):
            await producer.send_and_wait(topic, b"%d" % n)
        assert await values(1_500, batch_size=3) == [b"0", b"1", b"2"]
        assert await values(0) == [b"3", b"4"]
    finally:
        await consumer.stop()
        await producer.stop()
