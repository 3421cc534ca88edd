"""EVSE status changes, live, for the dashboard's status board (docs/adr/0033).

Each API process reads ``ocpi.evse-status.v1`` with its own consumer, in
no consumer group (every process must see every change, and nothing is
committed: a board only wants what happens from now on), from the end of
each partition. ``EvseStatusHub`` numbers what it reads, keeps the last
``capacity`` changes and hands each to every connected board: one Kafka
read per process, however many browsers watch. ``OnDemandFeed`` runs that
read only while boards want it: an API process nobody watches reads none
of the status stream (under a stream of partner updates that read was a
tenth of the API's CPU).

A board renders the MySQL rows, noting the hub's number *before* it reads
them, then asks for everything after that number: a change that happened
while the page was read is replayed (applying it twice is harmless, the
stream is in order per EVSE). A board that reconnects (``Last-Event-ID``)
gets what it missed, or, when that is older than the buffer, is told to
load afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.events import parse_event
from schemas.events.locations import EvseStatusResolved, evse_key
from schemas.ocpi.common import fold, format_ocpi_datetime
from schemas.topics import EVSE_STATUS

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class EvseChange:
    """One resolved status, as the board shows it."""

    seq: int
    evse_key: str
    country_code: str
    party_id: str
    location_id: str
    evse_uid: str
    status: str
    last_updated: str

    @classmethod
    def of(cls, seq: int, event: EvseStatusResolved) -> EvseChange:
        p = event.payload
        return cls(
            seq=seq,
            evse_key=evse_key(p.country_code, p.party_id, p.location_id, p.evse_uid),
            country_code=p.country_code,
            party_id=p.party_id,
            location_id=p.location_id,
            evse_uid=p.evse_uid,
            status=p.status.value,
            last_updated=format_ocpi_datetime(p.last_updated),
        )


@dataclass(frozen=True)
class BoardFilter:
    """Which EVSEs a board shows: by location, owning party and status
    (CiStrings compare folded; None: any)."""

    location_id: str | None = None
    country_code: str | None = None
    party_id: str | None = None
    status: str | None = None

    def matches(self, change: EvseChange) -> bool:
        wanted = (
            (self.location_id, change.location_id),
            (self.country_code, change.country_code),
            (self.party_id, change.party_id),
        )
        if any(w is not None and fold(w) != fold(have) for w, have in wanted):
            return False
        return self.status is None or self.status == change.status


class GapError(Exception):
    """What a board asked for is older than the buffer: it must load afresh."""


class EvseStatusHub:
    """Fan-out of status changes to the connected boards of one process."""

    def __init__(self, capacity: int = 10_000, queue_size: int = 1_000) -> None:
        self._recent: deque[EvseChange] = deque(maxlen=capacity)
        self._watchers: set[asyncio.Queue[EvseChange | None]] = set()
        self._queue_size = queue_size
        self.seq = 0

    @property
    def watchers(self) -> int:
        return len(self._watchers)

    def publish(self, event: EvseStatusResolved) -> EvseChange:
        self.seq += 1
        change = EvseChange.of(self.seq, event)
        self._recent.append(change)
        for queue in list(self._watchers):
            try:
                queue.put_nowait(change)
            except asyncio.QueueFull:
                # A board that cannot keep up is cut off; its browser
                # reconnects and catches up from the buffer (or reloads).
                self._watchers.discard(queue)
                with contextlib.suppress(asyncio.QueueFull):
                    queue.get_nowait()
                queue.put_nowait(None)
        return change

    def reset(self) -> None:
        """Changes may have been missed (the feed started again after a
        failure): every board loads afresh. The skipped number makes any
        position a board holds a gap."""
        self.seq += 1
        self._recent.clear()
        for queue in list(self._watchers):
            self._watchers.discard(queue)
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)

    def since(self, seq: int) -> list[EvseChange]:
        """The changes after ``seq``; GapError when some of them are gone."""
        if seq > self.seq:  # a number from before this process started
            raise GapError
        first = self._recent[0].seq if self._recent else self.seq + 1
        if seq + 1 < first:
            raise GapError
        return [c for c in self._recent if c.seq > seq]

    @contextlib.contextmanager
    def watch(self) -> Iterator[asyncio.Queue[EvseChange | None]]:
        queue: asyncio.Queue[EvseChange | None] = asyncio.Queue(self._queue_size)
        self._watchers.add(queue)
        try:
            yield queue
        finally:
            self._watchers.discard(queue)


async def follow_evse_status(
    hub: EvseStatusHub, bootstrap: str, topic_prefix: str, *, started: asyncio.Event | None = None
) -> None:
    """Read the resolved statuses from the end of the topic into ``hub``
    until cancelled. Raises on a lost broker (the caller restarts it)."""
    name = topic_prefix + EVSE_STATUS.name
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        # A board shows a change within a fraction of a second of it.
        fetch_max_wait_ms=100,
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(name) or set()
        if not partitions:
            cluster = await consumer._client.fetch_all_metadata()
            partitions = cluster.partitions_for_topic(name) or set()
        tps = [TopicPartition(name, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        # seek_to_end is lazy: resolve the positions now, so nothing
        # recorded after this point is missed.
        for tp in tps:
            await consumer.position(tp)
        if started is not None:
            started.set()
        log.info("evse_status_feed_started", topic=name, partitions=len(tps))
        while True:
            batches = await consumer.getmany(timeout_ms=1000, max_records=500)
            for records in batches.values():
                for record in records:
                    if record.value is None:
                        continue
                    try:
                        event = parse_event(record.value)
                    except ValueError:  # a type this version does not know
                        continue
                    if isinstance(event, EvseStatusResolved):
                        hub.publish(event)
    finally:
        await consumer.stop()


Follow = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


class OnDemandFeed:
    """Feeds a hub only while boards want it: the first board page or stream
    starts ``follow`` (which positions itself at the end of the topic, sets
    the event it is given, then reads until cancelled, raising on a lost
    broker), and the feed stops once no board has been connected, nor a page
    asked, for ``idle_s``. A feed that fails starts again after
    ``restart_s`` (doubling up to ``restart_max_s``). Every start resets the
    hub, so a number a board held from an earlier run is a gap: it loads
    afresh. Without ``follow`` the hub is fed by someone else (tests) and
    this does nothing."""

    def __init__(
        self,
        hub: EvseStatusHub,
        follow: Follow | None,
        *,
        idle_s: float,
        start_wait_s: float = 5.0,
        restart_s: float = 0.5,
        restart_max_s: float = 30.0,
    ) -> None:
        self._hub = hub
        self._follow = follow
        self._idle_s = idle_s
        self._start_wait_s = start_wait_s
        self._restart_s = restart_s
        self._restart_max_s = restart_max_s
        self._task: asyncio.Task[None] | None = None
        self._positioned = asyncio.Event()
        self._wanted_at = 0.0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def wanted(self) -> None:
        """A board is about to note the hub's number: make sure the feed
        runs and is positioned, so no change after that number is missed.
        A broker that is away is waited for ``start_wait_s`` at most; the
        board then loads, and reloads once the feed starts."""
        if self._follow is None:
            return
        self._wanted_at = asyncio.get_running_loop().time()
        if not self.running:
            self._positioned = asyncio.Event()
            self._task = asyncio.create_task(self._run(self._follow, self._positioned))
        if not self._positioned.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._positioned.wait()), self._start_wait_s)

    async def _run(self, follow: Follow, positioned: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        delay = self._restart_s
        while True:
            self._hub.reset()
            reading = asyncio.create_task(follow(positioned))
            try:
                while not reading.done():
                    await asyncio.wait({reading}, timeout=min(self._idle_s, 5.0))
                    idle = loop.time() - self._wanted_at >= self._idle_s
                    if idle and self._hub.watchers == 0 and not reading.done():
                        log.info("evse_status_feed_idle_stopped", idle_s=self._idle_s)
                        return
            finally:
                reading.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await reading
            error = reading.exception() if not reading.cancelled() else None
            log.error(
                "part_failed_restarting",
                part="evse_status_feed",
                error_type=type(error).__name__ if error else "returned",
                retry_in_s=delay,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._restart_max_s)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _sse(event: str, data: object, event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data)}\n\n".encode()


async def board_stream(
    hub: EvseStatusHub,
    wanted: BoardFilter,
    start: int,
    signed_in: Callable[[], Awaitable[bool]],
    *,
    keepalive_s: float,
) -> AsyncIterator[bytes]:
    """One board's server-sent events: each change after ``start`` that
    ``wanted`` matches (``evse``, its number as the event id, so a
    reconnecting browser resumes after it), ``reload`` when some are gone,
    ``signedout`` once the session has ended (checked when quiet), and a
    comment every ``keepalive_s`` of quiet so proxies keep the stream."""
    with hub.watch() as queue:  # before reading the buffer: nothing slips between
        try:
            missed = hub.since(start)
        except GapError:
            yield _sse("reload", {})
            return
        seen = start
        for old in missed:
            seen = old.seq
            if wanted.matches(old):
                yield _sse("evse", asdict(old), old.seq)
        async for change in changes_for(hub, queue, keepalive_s):
            if change is None:
                if not await signed_in():
                    yield _sse("signedout", {})
                    return
                yield b": keep-alive\n\n"
                continue
            if change.seq > seen and wanted.matches(change):
                yield _sse("evse", asdict(change), change.seq)
        # Cut off for being slow: the browser reconnects and resumes.


async def changes_for(
    hub: EvseStatusHub, queue: asyncio.Queue[EvseChange | None], keepalive_s: float
) -> AsyncIterator[EvseChange | None]:
    """What a watcher receives: each change, or None after ``keepalive_s``
    of quiet (time for a keep-alive and a check of the session)."""
    while True:
        try:
            change = await asyncio.wait_for(queue.get(), keepalive_s)
        except TimeoutError:
            yield None
            continue
        if change is None:  # cut off for being too slow
            return
        yield change
