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
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    KafkaError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    TopicAlreadyExistsError,
    UnknownProducerId,
)
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from schemas.events import EventMeta, parse_event, serialize_event
from schemas.ocpi.limits import BeyondLimitsError, check_body
from schemas.topics import CATALOGUE, TopicSpec, topic_for

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Position:
    """Where an event was written: the catalogue topic (without deployment
    prefix), the partition and the offset."""

    topic: str
    partition: int
    offset: int


# The producer's max_request_size when none is given: aiokafka's and Kafka's
# default, just under the topics' default max.message.bytes (1,048,588).
DEFAULT_MAX_MESSAGE_BYTES = 1_048_576


class AppendRefusedError(Exception):
    """The events were refused before anything was sent: certainly not
    recorded, and sending them again cannot succeed."""


class EventTooLargeError(AppendRefusedError):
    """An event is larger than a Kafka message may be."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"the object is too large to record: {size} bytes as an event, "
            f"at most {limit} bytes fit in one"
        )
        self.size = size
        self.limit = limit


class UnholdableEventError(AppendRefusedError):
    """An event carries a value the topic's readers cannot hold (the edge
    refuses such bodies first; this is the last line, for every producer)."""


class NotSentError(Exception):
    """Nothing was handed to Kafka (not started, no metadata, the first send
    refused): certainly not recorded; a retry may succeed."""


class UnconfirmedError(Exception):
    """Events were handed to Kafka but no acknowledgement came (a timeout, a
    connection lost): they may or may not be in the log."""


def encoded(events: Sequence[EventMeta], max_message_bytes: int) -> list[bytes]:
    """Every event's record value, once each is known to fit in a Kafka
    message (the size aiokafka's producer would compute) and to carry only
    values the readers hold (schemas/ocpi/limits.py); else
    ``AppendRefusedError`` before anything is sent."""
    values = []
    for event in events:
        value = serialize_event(event)
        size = DefaultRecordBatchBuilder.estimate_size_in_bytes(
            event.aggregate_key.encode(), value, _headers(event)
        )
        if size > max_message_bytes:
            raise EventTooLargeError(size, max_message_bytes)
        try:
            # orjson decodes integers beyond 64 bits as doubles, which the
            # check refuses too, and fails only on numbers beyond a double.
            check_body(orjson.loads(value), now=None, max_ahead=None)
        except orjson.JSONDecodeError as exc:
            raise UnholdableEventError(f"the event cannot be held by its readers: {exc}") from exc
        except BeyondLimitsError as exc:
            raise UnholdableEventError(f"the event cannot be held by its readers: {exc}") from exc
        values.append(value)
    return values


def _headers(event: EventMeta) -> list[tuple[str, bytes]]:
    headers = [
        ("event_type", _event_type(event).encode()),
        ("schema_version", str(getattr(event, "schema_version")).encode()),  # noqa: B009
    ]
    if event.actor is not None:
        # Lets a reader pick the operators' writes out of a busy topic (the
        # audit view, of charger facts) without decoding every value.
        headers.append(("actor", str(event.actor).encode()))
    return headers


class EventLog(Protocol):
    async def append(
        self, events: Sequence[EventMeta], *, partition: int | None = None
    ) -> list[Position]:
        """Write the events durably; return their positions once acknowledged.
        ``partition`` places them (the write path passes the partition of
        their key, as the default partitioner would); else by key. Raises
        ``AppendRefusedError`` or ``NotSentError`` when certainly nothing was
        recorded, ``UnconfirmedError`` when it may have been."""
        ...


def _event_type(event: EventMeta) -> str:
    event_type: str = getattr(event, "event_type")  # noqa: B009 - every concrete event has one
    return event_type


# Errors after which an idempotent producer never delivers again to the
# partition (or at all): its sequence numbers or its producer id no longer
# match the broker's (a broker restart can lose its producer state). aiokafka
# does not reset them, so only a new producer (a new id) writes again.
# ``KafkaError`` itself is what aiokafka's sender fails every batch with once
# its background task died, and what ``send`` raises from then on.
PRODUCER_FATAL: tuple[type[BaseException], ...] = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    ProducerFenced,
)


def _is_fatal(exc: BaseException) -> bool:
    # Exactly KafkaError: the sender's "Unexpected error during batch
    # delivery"; its subclasses are ordinary (often retriable) errors.
    return isinstance(exc, PRODUCER_FATAL) or type(exc) is KafkaError


class Producer(Protocol):
    """What ``KafkaEventLog`` uses of aiokafka's producer (a test injects
    another through ``producer_factory``)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(
        self,
        topic: str,
        value: bytes,
        key: bytes,
        partition: int | None,
        headers: list[tuple[str, bytes]],
    ) -> asyncio.Future[Any]: ...


class KafkaEventLog:
    def __init__(
        self,
        bootstrap: str,
        topic_prefix: str = "",
        timeout_s: float = 10.0,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        producer_factory: Callable[[], Producer] | None = None,
    ) -> None:
        self._bootstrap = bootstrap
        self._prefix = topic_prefix
        self._timeout_s = timeout_s
        self._max_message_bytes = max_message_bytes
        self._factory = producer_factory or self._new_producer
        self._producer: Producer | None = None
        # Which producer is current (each replacement counts one), and the
        # generation found broken: the next append replaces it first, once,
        # however many appends saw it fail (the lock orders them).
        self._generation = 0
        self._broken: int | None = None
        self._replacing = asyncio.Lock()
        self._retiring: set[asyncio.Task[None]] = set()

    def _new_producer(self) -> Producer:
        producer: Producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
            request_timeout_ms=int(self._timeout_s * 1000),
            max_request_size=self._max_message_bytes,
        )
        return producer

    @property
    def generation(self) -> int:
        """How many times the producer was replaced since ``start``."""
        return self._generation

    async def start(self) -> None:
        producer = self._factory()
        await producer.start()
        self._producer = producer

    async def stop(self) -> None:
        for task in list(self._retiring):
            await task
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def _current(self) -> tuple[Producer, int]:
        """The producer to send with, a new one if the current one broke."""
        if self._producer is None:
            raise NotSentError("event log not started")
        if self._broken != self._generation:
            return self._producer, self._generation
        async with self._replacing:
            if self._broken == self._generation and self._producer is not None:
                old = self._producer
                new = self._factory()
                try:
                    await asyncio.wait_for(new.start(), timeout=self._timeout_s)
                except Exception as exc:
                    # Still broken: the next append tries again.
                    log.error(
                        "event_log_producer_replace_failed",
                        error_type=type(exc).__name__,
                        error=str(exc)[:300],
                    )
                    with contextlib.suppress(Exception):
                        await new.stop()
                    raise NotSentError(
                        f"the producer could not be replaced: {type(exc).__name__}"
                    ) from exc
                self._producer = new
                self._generation += 1
                self._broken = None
                log.warning("event_log_producer_replaced", generation=self._generation)
                task = asyncio.create_task(self._retire(old))
                self._retiring.add(task)
                task.add_done_callback(self._retiring.discard)
        if self._producer is None:
            raise NotSentError("event log stopped")
        return self._producer, self._generation

    async def _retire(self, old: Producer) -> None:
        """Stop a replaced producer. Its batches still in flight are other
        appends' and end as their appends see them (acknowledged, or failed:
        outcome unknown, the aggregate held for the fate window, ADR 0027).
        If it cannot flush within the produce timeout, it is closed without
        flushing, so nothing it holds can land later than that: a later write
        of the same key (through the new producer) is never overtaken."""
        try:
            await asyncio.wait_for(old.stop(), timeout=self._timeout_s)
        except Exception as exc:
            log.warning("event_log_producer_abandoned", error_type=type(exc).__name__)
            await _abandon(old)

    def _failed(
        self, generation: int, exc: BaseException, topic: str, partition: int | None
    ) -> None:
        """Log an append failure with its cause (never the event) and mark
        the producer for replacement when the failure is one it cannot
        recover from."""
        fatal = _is_fatal(exc)
        log.error(
            "event_log_append_failed",
            error_type=type(exc).__name__,
            error=str(exc)[:300],
            topic=topic,
            partition=partition,
            producer_generation=generation,
            replace_producer=fatal,
        )
        if fatal and generation == self._generation:
            self._broken = generation

    async def append(
        self, events: Sequence[EventMeta], *, partition: int | None = None
    ) -> list[Position]:
        values = encoded(events, self._max_message_bytes)
        producer, generation = await self._current()
        futures = []
        names = []
        for event, value in zip(events, values, strict=True):
            names.append(topic_for(_event_type(event)).name)
            try:
                futures.append(
                    await producer.send(
                        self._prefix + names[-1],
                        value=value,
                        key=event.aggregate_key.encode(),
                        partition=partition,
                        headers=_headers(event),
                    )
                )
            except Exception as exc:
                self._failed(generation, exc, self._prefix + names[-1], partition)
                # send() fails before it queues the record (metadata, buffer):
                # with nothing queued yet, nothing can reach the log.
                if not futures:
                    raise NotSentError(f"{type(exc).__name__}: {exc}") from exc
                raise UnconfirmedError(f"{type(exc).__name__}: {exc}") from exc
        try:
            outcomes = await asyncio.wait_for(
                asyncio.gather(*futures, return_exceptions=True), timeout=self._timeout_s
            )
        except Exception as exc:
            self._failed(generation, exc, self._prefix + names[0], partition)
            raise UnconfirmedError(f"{type(exc).__name__}: {exc}") from exc
        failures = [
            (name, outcome)
            for name, outcome in zip(names, outcomes, strict=True)
            if isinstance(outcome, BaseException)
        ]
        for name, failure in failures:
            self._failed(generation, failure, self._prefix + name, partition)
        if failures:
            first = failures[0][1]
            raise UnconfirmedError(f"{type(first).__name__}: {first}") from first
        positions = []
        for name, metadata in zip(names, outcomes, strict=True):
            m: Any = metadata
            positions.append(Position(name, m.partition, m.offset))
        return positions

    async def ping(self) -> None:
        """Raise unless the cluster answers a metadata request."""
        producer: Any = self._producer
        if producer is None:
            raise RuntimeError("event log not started")
        await asyncio.wait_for(producer.client.force_metadata_update(), timeout=3)
        if not producer.client.cluster.brokers():
            raise ConnectionError("no Kafka broker known")


async def _abandon(producer: Producer) -> None:
    """Close a producer that could not flush: its sender stops (no request
    goes out any more) and its connections close. aiokafka has no public
    call for this; a producer that is not aiokafka's is only logged."""
    sender = getattr(producer, "_sender", None)
    client = getattr(producer, "client", None)
    try:
        if sender is not None:
            await sender.close()
        if client is not None:
            await client.close()
    except Exception as exc:  # closing: nothing more to do than report
        log.warning("event_log_producer_close_failed", error_type=type(exc).__name__)


class KafkaLogHistory:
    """Reads the log back for the write path (producers/write_path.py): the
    recent events of one key, when a writer left without committing, and
    whole topics, when the decision states are rebuilt. Each read uses its
    own short-lived consumer without a group: these reads are rare."""

    def __init__(self, bootstrap: str, topic_prefix: str = "", batch: int = 5000) -> None:
        self._bootstrap = bootstrap
        self._prefix = topic_prefix
        self._batch = batch

    @contextlib.asynccontextmanager
    async def _consumer(self) -> AsyncIterator[AIOKafkaConsumer]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, group_id=None, enable_auto_commit=False
        )
        await consumer.start()
        try:
            yield consumer
        finally:
            await consumer.stop()

    async def partitions(self, topic: TopicSpec, *, wait_s: float = 10.0) -> int:
        """The topic's partition count. A topic created a moment ago may be
        missing from the metadata a broker answers with: ask again until
        ``wait_s`` has passed."""
        deadline = asyncio.get_running_loop().time() + wait_s
        async with self._consumer() as consumer:
            while not (found := await _partitions_of(consumer, self._prefix + topic.name)):
                if asyncio.get_running_loop().time() >= deadline:
                    raise LookupError(f"topic {self._prefix + topic.name} not found")
                await asyncio.sleep(0.2)
        return len(found)

    async def events_of(
        self, topic: TopicSpec, partition: int, key: str, *, since_ms: int, after: int | None
    ) -> list[tuple[int, EventMeta]]:
        tp = TopicPartition(self._prefix + topic.name, partition)
        wanted = key.encode()
        found: list[tuple[int, EventMeta]] = []
        async with self._consumer() as consumer:
            consumer.assign([tp])
            at = (await consumer.offsets_for_times({tp: max(since_ms, 0)}))[tp]
            end = (await consumer.end_offsets([tp]))[tp]
            start = at.offset if at is not None else end
            if after is not None:
                start = max(start, after + 1)
            async for message in _read(consumer, {tp: (start, end)}, self._batch):
                if message.key == wanted and (event := _decoded(topic, message)) is not None:
                    found.append((message.offset, event))
        return found

    async def scan(self, topic: TopicSpec) -> AsyncIterator[tuple[int, int, EventMeta]]:
        name = self._prefix + topic.name
        async with self._consumer() as consumer:
            numbers = await _partitions_of(consumer, name)
            tps = [TopicPartition(name, p) for p in sorted(numbers)]
            consumer.assign(tps)
            begin = await consumer.beginning_offsets(tps)
            end = await consumer.end_offsets(tps)
            ranges = {tp: (begin[tp], end[tp]) for tp in tps}
            async for message in _read(consumer, ranges, self._batch):
                if (event := _decoded(topic, message)) is not None:
                    yield message.partition, message.offset, event


async def _partitions_of(consumer: AIOKafkaConsumer, name: str) -> set[int]:
    # aiokafka keeps a consumer's metadata to its subscriptions; ask for all.
    cluster = await consumer._client.fetch_all_metadata()
    found: set[int] | None = cluster.partitions_for_topic(name)
    return found or set()


def _decoded(topic: TopicSpec, message: ConsumerRecord[bytes, bytes]) -> EventMeta | None:
    """The event of a record; None for a type this version does not know
    (a newer producer may add types; old readers skip them)."""
    headers = dict(message.headers or ())
    if headers.get("event_type", b"").decode() not in topic.event_types or message.value is None:
        return None
    event: EventMeta = parse_event(message.value)
    return event


async def _read(
    consumer: AIOKafkaConsumer,
    ranges: dict[TopicPartition, tuple[int, int]],
    batch: int,
) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
    """The records of each partition in [start, end), partition order kept."""
    pending = set()
    for tp, (start, end) in ranges.items():
        if end > start:
            consumer.seek(tp, start)
            pending.add(tp)
        else:
            consumer.pause(tp)
    quiet = 0
    while pending:
        batches = await consumer.getmany(timeout_ms=500, max_records=batch)
        quiet = 0 if batches else quiet + 1
        for tp, messages in batches.items():
            end = ranges[tp][1]
            for message in messages:
                if tp in pending and message.offset < end:
                    yield message
                if message.offset + 1 >= end:
                    pending.discard(tp)
        if quiet >= 4:
            # Offsets without a record (transaction markers) at the end of a
            # partition: trust the consumer's position.
            for tp in list(pending):
                if await consumer.position(tp) >= ranges[tp][1]:
                    pending.discard(tp)


class Fault(Enum):
    """How the next append of an ``InMemoryEventLog`` fails."""

    NOT_SENT = "NOT_SENT"  # refused before sending: nothing kept
    LOST_IN_FLIGHT = "LOST_IN_FLIGHT"  # no answer, and nothing reached the log
    ANSWER_LOST = "ANSWER_LOST"  # the log kept the events, the answer was lost


class InMemoryEventLog:
    """A fake for unit tests of the HTTP shell: keeps events in a list.
    ``faults``: how the next appends fail, first one first."""

    def __init__(self, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self.events: list[EventMeta] = []
        self.faults: list[Fault] = []
        self._max_message_bytes = max_message_bytes

    async def append(
        self, events: Sequence[EventMeta], *, partition: int | None = None
    ) -> list[Position]:
        encoded(events, self._max_message_bytes)
        fault = self.faults.pop(0) if self.faults else None
        if fault is Fault.NOT_SENT:
            raise NotSentError("fault injected: not sent")
        if fault is Fault.LOST_IN_FLIGHT:
            raise UnconfirmedError("fault injected: no answer, nothing kept")
        positions = []
        for event in events:
            self.events.append(event)
            topic = topic_for(_event_type(event)).name
            positions.append(Position(topic, partition or 0, len(self.events) - 1))
        if fault is Fault.ANSWER_LOST:
            raise UnconfirmedError("fault injected: kept, answer lost")
        return positions


async def wait_until_led(
    admin: AIOKafkaAdminClient, wanted: dict[str, int], within_s: float = 30.0
) -> None:
    """Wait until every topic of ``wanted`` (name -> partitions) is described
    with all its partitions, each with a leader (at most ``within_s``). A
    topic just created is described for a moment with none, and a client
    that reads its metadata then keeps "0 partitions" until its next refresh,
    5 minutes later: a consumer is assigned nothing, a table write fails, a
    story stalls for minutes (seen on a loaded machine, in the processors and
    in the billing tests)."""
    deadline = time.monotonic() + within_s
    while True:
        described = await admin.describe_topics(sorted(wanted))
        led = {
            t["topic"]
            for t in described
            if not t.get("error_code")
            and len(t.get("partitions") or ()) == wanted.get(t["topic"])
            and all(p.get("leader", -1) >= 0 for p in t["partitions"])
        }
        if led >= set(wanted) or time.monotonic() > deadline:
            return
        await asyncio.sleep(0.2)


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
        await wait_until_led(admin, {t.name: t.num_partitions for t in new})
        created = [t.name for t in new]
        log.info("topics_created", topics=created)
        return created
    finally:
        await admin.close()


class InMemoryLogHistory:
    """Reads an ``InMemoryEventLog`` back (the fake of ``KafkaLogHistory``).
    Its offsets are positions in the one list, whatever the partition."""

    def __init__(self, log: InMemoryEventLog, partitions: int = 6) -> None:
        self._log = log
        self._partitions = partitions

    async def partitions(self, topic: TopicSpec) -> int:
        return self._partitions

    async def events_of(
        self, topic: TopicSpec, partition: int, key: str, *, since_ms: int, after: int | None
    ) -> list[tuple[int, EventMeta]]:
        return [
            (offset, event)
            for offset, event in enumerate(self._log.events)
            if event.aggregate_key == key
            and _event_type(event) in topic.event_types
            and (after is None or offset > after)
        ]

    async def scan(self, topic: TopicSpec) -> AsyncIterator[tuple[int, int, EventMeta]]:
        for offset, event in enumerate(list(self._log.events)):
            if _event_type(event) in topic.event_types:
                yield 0, offset, event
