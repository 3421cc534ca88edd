"""The event log port and its adapters.

``KafkaEventLog`` is the only code that produces to Kafka on behalf of the
HTTP layer: acks from all in-sync replicas, the idempotent producer, and a
record key per aggregate so that every event of one OCPI object keeps its
order. ``append`` returns only once the broker has acknowledged every event,
so an API that awaits it never acknowledges something that could be lost.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from schemas.events import EventMeta, serialize_event
from schemas.topics import CATALOGUE, topic_for

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Position:
    """Where an event was written: the catalogue topic (without deployment
    prefix), the partition and the offset."""

    topic: str
    partition: int
    offset: int


class EventLog(Protocol):
    async def append(self, events: Sequence[EventMeta]) -> list[Position]:
        """Write the events durably; return their positions once acknowledged."""
        ...


def _event_type(event: EventMeta) -> str:
    event_type: str = getattr(event, "event_type")  # noqa: B009 - every concrete event has one
    return event_type


class KafkaEventLog:
    def __init__(self, bootstrap: str, topic_prefix: str = "", timeout_s: float = 10.0) -> None:
        self._bootstrap = bootstrap
        self._prefix = topic_prefix
        self._timeout_s = timeout_s
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
            request_timeout_ms=int(self._timeout_s * 1000),
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def append(self, events: Sequence[EventMeta]) -> list[Position]:
        if self._producer is None:
            raise RuntimeError("event log not started")
        producer = self._producer
        futures = []
        names = []
        for event in events:
            names.append(topic_for(_event_type(event)).name)
            topic = self._prefix + names[-1]
            futures.append(
                await producer.send(
                    topic,
                    value=serialize_event(event),
                    key=event.aggregate_key.encode(),
                    headers=[
                        ("event_type", _event_type(event).encode()),
                        ("schema_version", str(getattr(event, "schema_version")).encode()),  # noqa: B009
                    ],
                )
            )
        metadata = await asyncio.wait_for(asyncio.gather(*futures), timeout=self._timeout_s)
        return [
            Position(name, m.partition, m.offset) for name, m in zip(names, metadata, strict=True)
        ]

    async def ping(self) -> None:
        """Raise unless the cluster answers a metadata request."""
        if self._producer is None:
            raise RuntimeError("event log not started")
        await asyncio.wait_for(self._producer.client.force_metadata_update(), timeout=3)
        if not self._producer.client.cluster.brokers():
            raise ConnectionError("no Kafka broker known")


class InMemoryEventLog:
    """A fake for unit tests of the HTTP shell: keeps events in a list."""

    def __init__(self) -> None:
        self.events: list[EventMeta] = []

    async def append(self, events: Sequence[EventMeta]) -> list[Position]:
        positions = []
        for event in events:
            self.events.append(event)
            topic = topic_for(_event_type(event)).name
            positions.append(Position(topic, 0, len(self.events) - 1))
        return positions


async def ensure_topics(bootstrap: str, topic_prefix: str, replication_factor: int) -> list[str]:
    """Create every catalogued topic that does not exist yet; return the ones created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in CATALOGUE if topic_prefix + spec.name not in existing]
        if not missing:
            return []
        new = [
            NewTopic(
                name=topic_prefix + spec.name,
                num_partitions=spec.partitions,
                replication_factor=replication_factor,
                topic_configs=spec.config,
            )
            for spec in missing
        ]
        # Another process may win the race; the topic is there either way.
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(new)
        created = [t.name for t in new]
        log.info("topics_created", topics=created)
        return created
    finally:
        await admin.close()
