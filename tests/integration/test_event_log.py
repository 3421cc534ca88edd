"""KafkaEventLog against the real broker: durable, keyed, ordered, described."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from producers.locations import ReportEvseStatus, decide_report_evse_status
from producers.log import KafkaEventLog, ensure_topics
from schemas.events import EvseStatusReported, Party, parse_event
from schemas.ocpi.locations import EvseStatus, EvseStatusPatch
from schemas.topics import CATALOGUE, LOCATIONS
from tests.services import Namespace

T0 = datetime(2026, 3, 1, 8, tzinfo=UTC)


def reports(n: int, location_id: str) -> list[EvseStatusReported]:
    statuses = [EvseStatus.AVAILABLE, EvseStatus.CHARGING, EvseStatus.BLOCKED]
    out = []
    for i in range(n):
        command = ReportEvseStatus(
            country_code="NL",
            party_id="ABC",
            location_id=location_id,
            evse_uid=f"E{i % 2}",
            patch=EvseStatusPatch(status=statuses[i % 3], last_updated=T0 + timedelta(seconds=i)),
            source=Party(country_code="NL", party_id="ABC"),
            correlation_id=f"c-{i}",
        )
        out += decide_report_evse_status(command, T0)
    return out


async def test_topics_are_created_once_and_kept_forever(namespace: Namespace) -> None:
    s = namespace.settings
    first = await ensure_topics(s.kafka_bootstrap, s.topic_prefix, 1)
    second = await ensure_topics(s.kafka_bootstrap, s.topic_prefix, 1)
    assert second == []
    assert set(first) <= {s.topic(t.name) for t in CATALOGUE}
    admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, s.topic(LOCATIONS.name))]
        )
        entries = {
            name: value
            for response in described
            for resource in response.resources
            for name, value, *_ in resource[4]
        }
        assert entries["retention.ms"] == "-1"
        assert entries["retention.bytes"] == "-1"
        topics = await admin.describe_topics([s.topic(LOCATIONS.name)])
        assert len(topics[0]["partitions"]) == LOCATIONS.partitions
    finally:
        await admin.close()


async def test_appended_events_are_on_the_topic_in_order_under_their_key(
    namespace: Namespace,
) -> None:
    s = namespace.settings
    await ensure_topics(s.kafka_bootstrap, s.topic_prefix, 1)
    location_id = f"LOC-{uuid.uuid4().hex[:6]}"
    events = reports(12, location_id)
    log = KafkaEventLog(s.kafka_bootstrap, s.topic_prefix)
    await log.start()
    try:
        positions = await log.append(events)
    finally:
        await log.stop()
    assert len({(p.topic, p.partition) for p in positions}) == 1  # one key, one partition
    offsets = [p.offset for p in positions]
    assert offsets == sorted(offsets)

    assert positions[0].topic == LOCATIONS.name  # catalogue name, without the prefix
    tp = TopicPartition(s.topic(positions[0].topic), positions[0].partition)
    consumer = AIOKafkaConsumer(bootstrap_servers=s.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([tp])
        consumer.seek(tp, offsets[0])
        got = []
        while len(got) < len(events):
            batch = await consumer.getmany(tp, timeout_ms=2000)
            assert batch, "events acknowledged by the log are not readable"
            got += batch[tp]
    finally:
        await consumer.stop()
    got = got[: len(events)]
    assert [parse_event(m.value) for m in got] == events
    assert {m.key for m in got} == {f"NL/ABC/{location_id.upper()}".encode()}
    assert dict(got[0].headers)["event_type"] == b"EvseStatusReported"


async def test_an_unreachable_broker_is_an_error_not_a_silent_success() -> None:
    log = KafkaEventLog("127.0.0.1:1", "", timeout_s=2)
    try:
        await log.start()
    except Exception:
        return  # refused at start: nothing can be acknowledged
    try:
        raised = False
        try:
            await log.append(reports(1, "X"))
        except Exception:
            raised = True
        assert raised
    finally:
        await log.stop()
