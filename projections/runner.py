"""Feeds events from Kafka to the projection writers.

Live: a consumer group reads the projected topics in batches, hands each
batch to every writer, and commits offsets only after all writers have
written (at-least-once; the writers' position guard makes re-delivery
harmless).

Replay: reads the same topics from offset zero up to the end offsets seen at
the start, with no consumer group, into any set of writers: the live views
(after wiping them) or a fresh namespace to compare against the live ones.
Its batches are big (each document written once per batch) and the next one
is read and decoded while the last one is written.

Either way each message is decoded once (``decode``) and the same records go
to every writer, each writer in a thread of its own (``BatchApplier``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import CommitFailedError, RebalanceInProgressError

from projections.position import Record
from schemas.events import parse_event
from schemas.topics import (
    CDRS,
    CHARGER_REGISTRY,
    COMMANDS,
    EVSE_STATUS,
    LOCATIONS,
    PARTNERS,
    SESSIONS,
    TARIFFS,
    TOKENS,
)

log = structlog.get_logger(__name__)

# The topics the views are built from.
_PROJECTED = (
    LOCATIONS,
    EVSE_STATUS,
    PARTNERS,
    TARIFFS,
    TOKENS,
    SESSIONS,
    CDRS,
    COMMANDS,
    CHARGER_REGISTRY,
)
PROJECTED_TOPICS: tuple[str, ...] = tuple(t.name for t in _PROJECTED)
_KNOWN_EVENT_TYPES = frozenset(e for t in _PROJECTED for e in t.event_types)


class Writer(Protocol):
    name: str

    def prepare(self) -> None:
        """Create what the view needs (indexes); idempotent."""

    def wipe(self) -> None:
        """Remove every entry of the view."""

    def apply(self, records: Sequence[Record[object]]) -> int:
        """Apply a batch idempotently; return how many entries were written."""
        ...


def decode(prefix: str, message: ConsumerRecord[bytes, bytes]) -> Record[object] | None:
    """A Kafka message as a Record; None for event types this version does
    not project (a newer producer may add types; old readers skip them)."""
    headers = dict(message.headers or ())
    event_type = headers.get("event_type", b"").decode()
    if event_type and event_type not in _KNOWN_EVENT_TYPES:
        return None
    assert message.value is not None
    return Record(
        topic=message.topic.removeprefix(prefix),
        partition=message.partition,
        offset=message.offset,
        event=parse_event(message.value),
    )


class BatchApplier:
    """Hands one batch to every writer at once, each in a thread of its own.

    The writers keep separate views (collections, tables), so they do not
    depend on each other's writes; running them side by side overlaps one
    store's round trips with another's and with our own folding (pymongo and
    PyMySQL release the GIL while they wait). A batch is done when every
    writer is: the first failure is raised after the others have finished,
    so offsets are committed only for a batch every view has applied.
    """

    def __init__(self, writers: Sequence[Writer]) -> None:
        self._writers = list(writers)
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, len(self._writers)), thread_name_prefix="projection-writer"
        )

    async def apply(self, records: Sequence[Record[object]]) -> None:
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(
            *(loop.run_in_executor(self._pool, w.apply, records) for w in self._writers),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    def close(self) -> None:
        self._pool.shutdown(wait=True)


async def run_live(
    bootstrap: str,
    prefix: str,
    writers: Sequence[Writer],
    *,
    batch_size: int,
    poll_ms: int,
    stop: asyncio.Event,
) -> None:
    consumer = AIOKafkaConsumer(
        *(prefix + t for t in PROJECTED_TOPICS),
        bootstrap_servers=bootstrap,
        group_id=f"{prefix}ocpi-hub-projections",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=10_000,
        heartbeat_interval_ms=1_000,
    )
    await consumer.start()
    log.info("projections_started", topics=PROJECTED_TOPICS, writers=[w.name for w in writers])
    applier = BatchApplier(writers)
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=poll_ms, max_records=batch_size)
            records = [
                rec
                for messages in batches.values()
                for message in messages
                if (rec := decode(prefix, message)) is not None
            ]
            if records:
                await applier.apply(records)
            if batches:
                try:
                    await consumer.commit()
                except (CommitFailedError, RebalanceInProgressError) as exc:
                    # Another instance joined or left (docs/scale-out.md) and the
                    # group took the partitions back while this batch was
                    # written. The batch is applied; whoever owns the
                    # partitions now starts from the last commit and applies
                    # it again, which the position guard makes a no-op.
                    log.info("projections_commit_after_rebalance", error=type(exc).__name__)
    finally:
        applier.close()
        await consumer.stop()


async def _partitions(bootstrap: str, topics: list[str]) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    missing = [t["topic"] for t in described if t.get("error_code")]
    if missing:
        raise LookupError(f"topics not found: {missing}")
    return [
        TopicPartition(t["topic"], p["partition"])
        for t in described
        for p in sorted(t["partitions"], key=lambda p: p["partition"])
    ]


async def replay(
    bootstrap: str,
    prefix: str,
    writers: Sequence[Writer],
    *,
    batch_size: int,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
) -> int:
    """Apply every event from offset zero to the current end; return the count."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        partitions = await _partitions(bootstrap, [prefix + t for t in PROJECTED_TOPICS])
        if not partitions:
            return 0
        consumer.assign(partitions)
        start = await consumer.beginning_offsets(partitions)
        end = await consumer.end_offsets(partitions)
        total = sum(end[tp] - start[tp] for tp in partitions)
        for tp in partitions:
            consumer.seek(tp, start[tp])
        pending = {tp for tp in partitions if end[tp] > start[tp]}
        log.info(
            "replay_range",
            partitions={f"{tp.topic}:{tp.partition}": [start[tp], end[tp]] for tp in pending},
        )
        done = 0
        quiet_polls = 0
        on_progress(done, total)
        applier = BatchApplier(writers)
        applying: asyncio.Task[None] | None = None
        try:
            while pending:
                # Fill one batch from as many polls as it takes: a poll returns
                # what the consumer has buffered (about a fetch per partition),
                # far less than a replay batch, and a bigger batch folds more
                # events of one document into one write.
                records: list[Record[object]] = []
                while pending and len(records) < batch_size:
                    # Drain every assigned partition, finished ones included:
                    # aiokafka sends no new fetch to a broker while any
                    # partition it serves has undrained records, so asking only
                    # for the pending ones can stall once a finished partition
                    # has buffered records written after our snapshot. Those
                    # are read and skipped.
                    batches = await consumer.getmany(
                        timeout_ms=500, max_records=batch_size - len(records)
                    )
                    for tp, messages in batches.items():
                        for message in messages:
                            if message.offset >= end[tp]:
                                pending.discard(tp)
                                continue
                            done += 1
                            if (rec := decode(prefix, message)) is not None:
                                records.append(rec)
                            if message.offset + 1 >= end[tp]:
                                pending.discard(tp)
                    quiet_polls = 0 if batches else quiet_polls + 1
                    if quiet_polls >= 4:
                        # Our topics have a record at every offset, but a
                        # partition could end in offsets without one
                        # (transaction markers): after two quiet seconds, trust
                        # the consumer's position.
                        for tp in list(pending):
                            if await consumer.position(tp) >= end[tp]:
                                pending.discard(tp)
                    # An empty poll while partitions are pending only means
                    # the fetch is late (the writers keep the CPU busy): keep
                    # filling, or the batch, and its coalescing, shrinks.
                # The previous batch is written while this one was read and
                # decoded; batches are applied one at a time, in order.
                if applying is not None:
                    await applying
                    applying = None
                if records:
                    applying = asyncio.create_task(applier.apply(records))
                on_progress(done, total)
            if applying is not None:
                await applying
        finally:
            if applying is not None and not applying.done():
                applying.cancel()
                with contextlib.suppress(BaseException):
                    await applying
            applier.close()
        return done
    finally:
        await consumer.stop()
