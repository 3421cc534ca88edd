"""Feeds events from Kafka to the projection writers.

Live: a consumer group reads the projected topics in batches, hands each
batch to every writer, and commits offsets only after all writers have
written (at-least-once; the writers' position guard makes re-delivery
harmless).

Replay: reads the same topics from offset zero up to the end offsets seen at
the start, with no consumer group, into any set of writers: the live views
(after wiping them) or a fresh namespace to compare against the live ones.
Its batches are big (each document written once per batch), it reads the
topics' partitions a group at a time (``partition_groups``: fewer aggregates
per batch, so more events per document written), and the next batch is
read and decoded while the last one is written.

Either way each message is decoded once (``decode``) and the same records go
to every writer, each writer in a thread of its own (``BatchApplier``).

An event that does not decode, or that a writer cannot apply, does not stop
the partition: it is quarantined for that view (projections/dead_letters.py,
docs/adr/0028) and published on the dead-letter topic before the batch's
offsets are committed; the rest of the batch is applied. A store that is
away stops the batch instead (retried with backoff, nothing quarantined).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import CommitFailedError, KafkaError, RebalanceInProgressError

from producers.log import EventLog
from projections.dead_letters import (
    Failure,
    Guarded,
    Quarantine,
    StoppedWhileAwayError,
    StoreInterruptedError,
    describe,
    is_transient,
    log_quarantine,
    quarantined_event,
)
from projections.position import Record, Writer, read_types, reads_any
from schemas.events import EventMeta, Party, parse_event
from schemas.events.dead_letters import DECODE
from schemas.topics import (
    API_KEYS,
    BILLING_CORPORATIONS,
    CDRS,
    CHARGER_REGISTRY,
    CHARGER_TRANSACTIONS,
    CHARGING_PROFILES,
    COMMANDS,
    DEAD_LETTERS,
    EVSE_STATUS,
    HUB_CLIENT_INFO,
    LOCATIONS,
    OPERATOR_ACCOUNTS,
    PARTNERS,
    PAYMENTS,
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
    CHARGING_PROFILES,
    CHARGER_REGISTRY,
    DEAD_LETTERS,
    OPERATOR_ACCOUNTS,
    API_KEYS,
    CHARGER_TRANSACTIONS,
    BILLING_CORPORATIONS,
    HUB_CLIENT_INFO,
    PAYMENTS,
)
# Topics only the audit view reads (docs/adr/0031): their events are decoded
# only when an operator wrote them (the ``actor`` header); the charger facts
# the gateway records, by far the most, are skipped unread.
_AUDIT_ONLY = frozenset({CHARGER_TRANSACTIONS.name})
PROJECTED_TOPICS: tuple[str, ...] = tuple(t.name for t in _PROJECTED)
_KNOWN_EVENT_TYPES = frozenset(e for t in _PROJECTED for e in t.event_types)
# The writer of the dead-letter view (projections/mongo/dead_letters.py).
DEAD_LETTER_VIEW = "mongo.dead_letters"


def decode(prefix: str, message: ConsumerRecord[bytes, bytes]) -> Record[object] | None:
    """A Kafka message as a Record; None for event types this version does
    not project (a newer producer may add types; old readers skip them).
    Raises when the message is not an event we can read."""
    headers = dict(message.headers or ())
    event_type = headers.get("event_type", b"").decode(errors="replace")
    if event_type and event_type not in _KNOWN_EVENT_TYPES:
        return None
    topic = message.topic.removeprefix(prefix)
    if topic in _AUDIT_ONLY and "actor" not in headers:
        return None
    if message.value is None:
        raise ValueError("no value (a tombstone) where an event was expected")
    return Record(
        topic=topic,
        partition=message.partition,
        offset=message.offset,
        event=parse_event(message.value),
        raw=message.value,
    )


def decoded(
    prefix: str, messages: Iterable[ConsumerRecord[bytes, bytes]], failed: list[Quarantine]
) -> list[Record[object]]:
    """The messages as Records; one that does not decode is added to
    ``failed`` (no view can read it) and left out."""
    records: list[Record[object]] = []
    for message in messages:
        try:
            rec = decode(prefix, message)
        except Exception as exc:
            error_type, error = describe(exc)
            failed.append(
                Quarantine(
                    view=DECODE,
                    topic=message.topic.removeprefix(prefix),
                    partition=message.partition,
                    offset=message.offset,
                    key=message.key,
                    value=message.value,
                    error_type=error_type,
                    error_message=error,
                )
            )
            continue
        if rec is not None:
            records.append(rec)
    return records


class DeadLetters:
    """Where the runner sends what it quarantined: the dead-letter topic,
    through the event log (acks=all), or nowhere but the log (``publish``
    False: a replay into a scratch namespace must not mark the live dead
    letters). Records of a failed writer are read back from Kafka for their
    original key and value (a rare path; batches do not keep raw bytes)."""

    def __init__(
        self,
        bootstrap: str,
        prefix: str,
        us: Party | None,
        event_log: EventLog | None,
        *,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 30.0,
    ) -> None:
        self._bootstrap = bootstrap
        self._prefix = prefix
        self._us = us
        self._log = event_log
        self._initial = retry_initial_s
        self._max = retry_max_s
        # Quarantined (logged), and of those published on the topic.
        self.count = 0
        self.published = 0

    async def failed(self, failures: Sequence[Failure]) -> list[Quarantine]:
        """Quarantines for writer failures, with the records' original bytes."""
        if not failures:
            return []
        try:
            raw = await read_messages(
                self._bootstrap,
                self._prefix,
                {(f.record.topic, f.record.partition, f.record.offset) for f in failures},
            )
        except (KafkaError, OSError) as exc:
            # The copy is for inspection only (a retry reads the source
            # topic): a dead letter without it beats a stalled partition.
            log.warning("dead_letters_copy_failed", error_type=type(exc).__name__)
            raw = {}
        out = []
        for f in failures:
            r = f.record
            message = raw.get((r.topic, r.partition, r.offset))
            event = r.event
            out.append(
                Quarantine(
                    view=f.view,
                    topic=r.topic,
                    partition=r.partition,
                    offset=r.offset,
                    key=message.key if message is not None else None,
                    value=message.value if message is not None else None,
                    error_type=f.error_type,
                    error_message=f.error_message,
                    event_id=event.event_id if isinstance(event, EventMeta) else None,
                    correlation_id=(event.correlation_id if isinstance(event, EventMeta) else None),
                )
            )
        return out

    async def publish(self, quarantines: Sequence[Quarantine], stop: asyncio.Event) -> None:
        """Log each one and, unless this is a scratch replay, append its
        dead letter; return once Kafka acknowledged them (retried with
        backoff while it does not). A record of the dead-letter topic itself
        is only logged: quarantining it would feed the topic it came from."""
        if not quarantines:
            return
        publish = [
            q
            for q in quarantines
            if self._log is not None and self._us is not None and q.topic != DEAD_LETTERS.name
        ]
        for q in quarantines:
            log_quarantine(q, published=any(p is q for p in publish))
        self.count += len(quarantines)
        if not publish or self._log is None or self._us is None:
            return
        now = datetime.now(UTC)
        us = self._us
        events = [quarantined_event(q, us, now) for q in publish]
        delay = self._initial
        while True:
            try:
                await self._log.append(events)
                self.published += len(events)
                return
            except (KafkaError, TimeoutError) as exc:
                log.warning(
                    "dead_letters_append_failed", error_type=type(exc).__name__, retry_in_s=delay
                )
                if stop.is_set():
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max)


async def read_messages(
    bootstrap: str, prefix: str, positions: Iterable[tuple[str, int, int]]
) -> dict[tuple[str, int, int], ConsumerRecord[bytes, bytes]]:
    """The Kafka records at ``positions`` (catalogue topic, partition,
    offset); a position no longer there is left out."""
    wanted: dict[TopicPartition, set[int]] = {}
    for topic, partition, offset in positions:
        wanted.setdefault(TopicPartition(prefix + topic, partition), set()).add(offset)
    found: dict[tuple[str, int, int], ConsumerRecord[bytes, bytes]] = {}
    if not wanted:
        return found
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        consumer.assign(list(wanted))
        for tp, offsets in wanted.items():
            end = (await consumer.end_offsets([tp]))[tp]
            for offset in sorted(offsets):
                if offset >= end:
                    continue
                consumer.seek(tp, offset)
                for _ in range(20):  # a record at an offset arrives in a poll or two
                    batches = await consumer.getmany(tp, timeout_ms=500, max_records=1)
                    messages = batches.get(tp, [])
                    if messages:
                        m = messages[0]
                        if m.offset == offset:
                            found[(tp.topic.removeprefix(prefix), tp.partition, offset)] = m
                        break
    finally:
        await consumer.stop()
    return found


class BatchApplier:
    """Hands one batch to every writer at once, each in a thread of its own.

    The writers keep separate views (collections, tables), so they do not
    depend on each other's writes; running them side by side overlaps one
    store's round trips with another's and with our own folding (pymongo and
    PyMySQL release the GIL while they wait). A batch is done when every
    writer is: the first failure is raised after the others have finished,
    so offsets are committed only for a batch every view has applied.
    Writers wrapped in ``Guarded`` do not fail on an event they cannot
    apply; ``failures`` collects what they quarantined.

    ``settle``, when given, makes what the stores acknowledged of a batch
    durable (docs/adr/0032); ``settle()`` runs it once the batch is applied
    and before its offsets are committed. A store that was away meanwhile
    (a writer had to retry, or the settle fails for it) may have lost what
    it acknowledged: ``settle()`` then raises StoreInterruptedError and the
    batch is not committed.
    """

    def __init__(
        self, writers: Sequence[Writer], settle: Callable[[], object] | None = None
    ) -> None:
        self._writers = list(writers)
        self._settle = settle
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, len(self._writers)), thread_name_prefix="projection-writer"
        )

    async def apply(self, records: Sequence[Record[object]]) -> None:
        for writer in self._writers:
            if isinstance(writer, Guarded):
                writer.interrupted = False  # an interruption is this batch's
        loop = asyncio.get_running_loop()
        # A writer that reads none of the batch's event types is not called:
        # it would look at every record only to skip it.
        present = {type(r.event) for r in records}
        results = await asyncio.gather(
            *(
                loop.run_in_executor(self._pool, w.apply, records)
                for w in self._writers
                if reads_any(read_types(w), present)
            ),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def settle(self) -> None:
        interrupted = [w.name for w in self._writers if isinstance(w, Guarded) and w.interrupted]
        if interrupted:
            raise StoreInterruptedError(f"a store was away while {interrupted} wrote the batch")
        if self._settle is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(self._pool, self._settle)
        except Exception as exc:
            if is_transient(exc):
                raise StoreInterruptedError(f"settling the batch failed: {exc!r}"[:300]) from exc
            raise

    def failures(self) -> list[Failure]:
        """What the guarded writers quarantined in the last batch."""
        return [f for w in self._writers if isinstance(w, Guarded) for f in w.take_failures()]

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def guarded(
    writers: Sequence[Writer], stopping: threading.Event, *, initial_s: float, max_s: float
) -> list[Writer]:
    return [
        w
        if isinstance(w, Guarded)
        else Guarded(w, stopping=stopping, retry_initial_s=initial_s, retry_max_s=max_s)
        for w in writers
    ]


async def _gathered(
    consumer: AIOKafkaConsumer, poll_ms: int, batch_size: int, linger_ms: int
) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
    """The next batch: what the first poll returns, and what else arrives
    within ``linger_ms`` of it, up to ``batch_size`` records. Under a stream
    of events a batch then holds more events per document (one write each,
    docs/adr/0025) and the per-batch costs (a bulk per view, a MySQL commit,
    the journal barrier) are paid less often; an idle stream is not delayed
    beyond the linger."""
    batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = await consumer.getmany(
        timeout_ms=poll_ms, max_records=batch_size
    )
    if not batches or linger_ms <= 0:
        return batches
    loop = asyncio.get_running_loop()
    deadline = loop.time() + linger_ms / 1000
    held = sum(len(m) for m in batches.values())
    while held < batch_size and (left := deadline - loop.time()) > 0:
        more = await consumer.getmany(
            timeout_ms=max(1, int(left * 1000)), max_records=batch_size - held
        )
        for tp, messages in more.items():
            batches.setdefault(tp, []).extend(messages)
            held += len(messages)
    return batches


async def _relay(stop: asyncio.Event, stopping: threading.Event) -> None:
    await stop.wait()
    stopping.set()


async def run_live(
    bootstrap: str,
    prefix: str,
    writers: Sequence[Writer],
    *,
    batch_size: int,
    poll_ms: int,
    stop: asyncio.Event,
    dead_letters: DeadLetters | None = None,
    retry_initial_s: float = 0.5,
    retry_max_s: float = 30.0,
    settle: Callable[[], object] | None = None,
    linger_ms: int = 0,
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
    # Without a dead-letter topic to write to (tests of other parts), what
    # is quarantined is only logged.
    dead_letters = dead_letters or DeadLetters(bootstrap, prefix, None, None)
    await consumer.start()
    log.info("projections_started", topics=PROJECTED_TOPICS, writers=[w.name for w in writers])
    stopping = threading.Event()
    relay = asyncio.create_task(_relay(stop, stopping))
    applier = BatchApplier(
        guarded(writers, stopping, initial_s=retry_initial_s, max_s=retry_max_s), settle
    )
    try:
        while not stop.is_set():
            batches = await _gathered(consumer, poll_ms, batch_size, linger_ms)
            failed: list[Quarantine] = []
            records = decoded(
                prefix, (m for messages in batches.values() for m in messages), failed
            )
            if records:
                try:
                    await applier.apply(records)
                    # A store that crashes after acknowledging must not
                    # lose what the commit below will say is done; one that
                    # was away during the batch ends this run uncommitted
                    # (StoreInterruptedError), to start again afresh.
                    await applier.settle()
                except StoppedWhileAwayError:
                    # Stopping while a store is away: the batch is not done,
                    # its offsets stay uncommitted for the next start.
                    break
            failed += await dead_letters.failed(applier.failures())
            await dead_letters.publish(failed, stop)
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
        relay.cancel()
        stopping.set()
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


def partition_groups(partitions: Iterable[TopicPartition]) -> list[list[TopicPartition]]:
    """The partitions grouped by their number, lowest first.

    Our topics are keyed by aggregate, and those read together (a location's
    PUTs and PATCHes, its resolved statuses) have as many partitions, so an
    aggregate's events on every topic fall in one group. A replay reads the
    groups one after the other: a batch then holds a sixth of the aggregates
    (with six partitions), each with six times the events, and a view writes
    each document once per batch. Kafka orders nothing across partitions, so
    this is one more order the views already take (docs/adr/0051)."""
    by_number: dict[int, list[TopicPartition]] = {}
    for tp in sorted(partitions, key=lambda tp: (tp.partition, tp.topic)):
        by_number.setdefault(tp.partition, []).append(tp)
    return [by_number[n] for n in sorted(by_number)]


# Container objects a decoded event keeps alive (its pydantic models with
# their dicts and lists, 9.5 measured on the replay benchmark's events; its
# Record and the Kafka message it came from).
OBJECTS_PER_EVENT = 12


@contextlib.contextmanager
def young_collections_every(objects: int) -> Iterator[None]:
    """Run the collector's young collections only every ``objects`` net
    allocations while the block runs, then restore the threshold: for code
    that holds about that many container objects at a time and frees them
    whole (a replay's batches), which each young collection would walk, and
    every later one again, for no garbage (docs/adr/0050: a third of a
    replay's CPU). A lower threshold is raised, never a higher one lowered;
    a disabled collector (threshold 0) stays disabled."""
    young, older, oldest = gc.get_threshold()
    if young == 0 or young >= objects:
        yield
        return
    gc.set_threshold(objects, older, oldest)
    try:
        yield
    finally:
        gc.set_threshold(young, older, oldest)


async def replay(
    bootstrap: str,
    prefix: str,
    writers: Sequence[Writer],
    *,
    batch_size: int,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
    dead_letters: DeadLetters | None = None,
    topics: Sequence[str] = PROJECTED_TOPICS,
    retry_initial_s: float = 0.5,
    retry_max_s: float = 30.0,
    settle: Callable[[], object] | None = None,
) -> int:
    """Apply every event from offset zero to the current end; return the count.

    ``settle`` makes each batch durable as the live runner does (docs/adr/
    0032). A replay commits no offsets, but it reports the views complete:
    a store that went away during it may have lost what it acknowledged,
    so the replay then ends with StoreInterruptedError rather than report
    a rebuild that is not whole (run it again).

    Events that cannot be applied are quarantined as in the live runner
    (``dead_letters``; without one they are only logged). Once done, the
    dead letters this replay published are folded into the dead-letter view
    too (the topic read again to its new end; the position guard skips the
    rest), so the replay leaves that view complete."""
    dead_letters = dead_letters or DeadLetters(bootstrap, prefix, None, None)
    published_before = dead_letters.published
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        partitions = await _partitions(bootstrap, [prefix + t for t in topics])
        if not partitions:
            return 0
        consumer.assign(partitions)
        done = 0
        start = await consumer.beginning_offsets(partitions)
        end = await consumer.end_offsets(partitions)
        total = sum(end[tp] - start[tp] for tp in partitions)
        pending = {tp for tp in partitions if end[tp] > start[tp]}
        groups = partition_groups(pending)
        reading: set[TopicPartition] = set()
        log.info(
            "replay_range",
            partitions={f"{tp.topic}:{tp.partition}": [start[tp], end[tp]] for tp in pending},
        )
        quiet_polls = 0
        on_progress(done, total)
        never = asyncio.Event()  # a replay runs to its end (or is interrupted)
        applier = BatchApplier(
            guarded(writers, threading.Event(), initial_s=retry_initial_s, max_s=retry_max_s),
            settle,
        )

        async def apply(records: list[Record[object]], failed: list[Quarantine]) -> None:
            if records:
                await applier.apply(records)
                await applier.settle()
            failed += await dead_letters.failed(applier.failures())
            await dead_letters.publish(failed, never)

        # Two batches of decoded events are held at a time (one written, the
        # next read meanwhile): young collections would walk them for no
        # garbage (docs/adr/0050).
        with young_collections_every(2 * batch_size * OBJECTS_PER_EVENT):
            applying: asyncio.Task[None] | None = None
            try:
                while pending:
                    # Fill one batch from as many polls as it takes: a poll returns
                    # what the consumer has buffered (about a fetch per partition),
                    # far less than a replay batch, and a bigger batch folds more
                    # events of one document into one write.
                    records: list[Record[object]] = []
                    failed: list[Quarantine] = []
                    while pending and len(records) + len(failed) < batch_size:
                        if not reading & pending:
                            # The next group: only its partitions are assigned.
                            group = groups.pop(0)
                            consumer.assign(group)
                            for tp in group:
                                consumer.seek(tp, start[tp])
                            reading = set(group)
                            quiet_polls = 0
                        # Drain every assigned partition, finished ones included:
                        # aiokafka sends no new fetch to a broker while any
                        # partition it serves has undrained records, so asking only
                        # for the pending ones can stall once a finished partition
                        # has buffered records written after our snapshot. Those
                        # are read and skipped.
                        batches = await consumer.getmany(
                            timeout_ms=500, max_records=batch_size - len(records) - len(failed)
                        )
                        for tp, messages in batches.items():
                            taken = [m for m in messages if m.offset < end[tp]]
                            if len(taken) < len(messages) or (
                                taken and taken[-1].offset + 1 >= end[tp]
                            ):
                                pending.discard(tp)
                            done += len(taken)
                            records += decoded(prefix, taken, failed)
                        quiet_polls = 0 if batches else quiet_polls + 1
                        if quiet_polls >= 4:
                            # Our topics have a record at every offset, but a
                            # partition could end in offsets without one
                            # (transaction markers): after two quiet seconds, trust
                            # the consumer's position.
                            for tp in list(reading & pending):
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
                    if records or failed:
                        applying = asyncio.create_task(apply(records, failed))
                    on_progress(done, total)
                if applying is not None:
                    await applying
            finally:
                if applying is not None and not applying.done():
                    applying.cancel()
                    with contextlib.suppress(BaseException):
                        await applying
                applier.close()
    finally:
        await consumer.stop()
    if dead_letters.published > published_before and DEAD_LETTERS.name in topics:
        await replay(
            bootstrap,
            prefix,
            [w for w in writers if w.name == DEAD_LETTER_VIEW],
            batch_size=batch_size,
            topics=(DEAD_LETTERS.name,),
            retry_initial_s=retry_initial_s,
            retry_max_s=retry_max_s,
        )
    return done
