"""A real ``OutOfOrderSequenceNumber`` from the real broker (issue 12): the
idempotent producer's sequence for one partition is pushed past what the
broker expects (as a broker restart that lost the producer's state leaves
it), so the broker refuses every later batch on that partition. aiokafka
never recovers from that by itself; ``KafkaEventLog`` replaces the producer
and the next append lands, after the acknowledged ones, the failed one not
in the log."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import OutOfOrderSequenceNumber
from structlog.testing import capture_logs

from producers.log import KafkaEventLog, KafkaLogHistory, UnconfirmedError, ensure_topics
from schemas.topics import topic_for
from tests.services import Namespace
from tests.unit.factories import put

PARTITION = 2


def event(n: int, location_id: str) -> Any:
    obj: dict[str, object] = {
        "id": location_id,
        "name": f"v{n}",
        "last_updated": f"2026-01-01T12:00:0{n}Z",
    }
    return put(obj, location_id=location_id).event


def desynchronise(producer: Any, tp: TopicPartition) -> None:
    # What the broker expects next is the producer's last sequence + 1: a
    # gap is refused with OUT_OF_ORDER_SEQUENCE_NUMBER.
    producer._txn_manager.increment_sequence_number(tp, 7)


async def test_the_broker_keeps_refusing_a_desynchronised_producer(namespace: Namespace) -> None:
    """The premise, on aiokafka alone: once refused, always refused."""
    s = namespace.settings
    await ensure_topics(s.kafka_bootstrap, s.topic_prefix, 1)
    topic = s.topic_prefix + "ocpi.locations.v1"
    producer = AIOKafkaProducer(
        bootstrap_servers=s.kafka_bootstrap, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"{}", key=b"k", partition=PARTITION)
        desynchronise(producer, TopicPartition(topic, PARTITION))
        for _ in range(2):
            with pytest.raises(OutOfOrderSequenceNumber):
                await producer.send_and_wait(topic, b"{}", key=b"k", partition=PARTITION)
    finally:
        await producer.stop()


async def test_the_event_log_replaces_the_refused_producer(namespace: Namespace) -> None:
    s = namespace.settings
    await ensure_topics(s.kafka_bootstrap, s.topic_prefix, 1)
    location_id = "REPLACE1"
    first, failed, after = event(1, location_id), event(2, location_id), event(3, location_id)
    log = KafkaEventLog(s.kafka_bootstrap, s.topic_prefix, 5.0)
    await log.start()
    try:
        [at_first] = await log.append([first], partition=PARTITION)
        topic = s.topic_prefix + at_first.topic
        desynchronise(log._producer, TopicPartition(topic, PARTITION))
        with capture_logs() as logs, pytest.raises(UnconfirmedError):
            await log.append([failed], partition=PARTITION)
        [entry] = [e for e in logs if e["event"] == "event_log_append_failed"]
        assert entry["error_type"] == "OutOfOrderSequenceNumber"
        assert (entry["topic"], entry["partition"]) == (topic, PARTITION)
        assert entry["replace_producer"] is True

        [at_after] = await log.append([after], partition=PARTITION)
        assert log.generation == 1
        assert at_after.offset > at_first.offset
    finally:
        await log.stop()

    history = KafkaLogHistory(s.kafka_bootstrap, s.topic_prefix)
    found = await history.events_of(
        topic_for("LocationObjectPut"),
        PARTITION,
        first.aggregate_key,
        since_ms=0,
        after=None,
    )
    assert [e.event_id for _, e in found] == [first.event_id, after.event_id]
