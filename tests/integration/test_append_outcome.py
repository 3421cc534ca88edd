"""What a write answers when its append fails, on the real Kafka and Redis
(docs/adr/0027): an event too large for a Kafka message is refused before
anything is sent; a send whose answer is lost after the broker kept it is
found by reading the partition back (recorded, answered as such); a send of
unknown fate that did not land keeps the object held for the fate window
and is never answered "not recorded".

The faults are put around the real adapter (the events really go to Kafka,
or really do not): a broker that keeps a record but whose answer is lost
cannot be produced on demand.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis
from aiokafka.errors import KafkaTimeoutError

from producers import locations
from producers.decision_store import RedisDecisionStore
from producers.locations import PatchObject, PutObject, decide
from producers.log import (
    EventTooLargeError,
    KafkaEventLog,
    KafkaLogHistory,
    NotSentError,
    Position,
    UnconfirmedError,
    ensure_topics,
)
from producers.write_path import (
    Origin,
    OutcomeUnknownError,
    RefusedError,
    Timing,
    UnavailableError,
    WritePath,
)
from schemas.events import EventMeta, Party
from schemas.events.locations import LocationObjectRef
from schemas.topics import LOCATIONS
from tests.ocpi_objects import evse, location
from tests.services import Namespace

T0 = datetime(2026, 3, 1, 8, tzinfo=UTC)
ORIGIN = Origin(Party(country_code="NL", party_id="ABC"), "c-1")


class FaultyLog:
    """The real Kafka log with one fault for the next append: ``"kept"`` (sent
    for real, then the answer is lost) or ``"lost"`` (nothing sent, outcome
    reported unknown)."""

    def __init__(self, real: KafkaEventLog) -> None:
        self.real = real
        self.fault: str | None = None

    async def append(
        self, events: Sequence[EventMeta], *, partition: int | None = None
    ) -> list[Position]:
        fault, self.fault = self.fault, None
        if fault == "lost":
            raise UnconfirmedError("KafkaTimeoutError: no answer")
        positions = await self.real.append(events, partition=partition)
        if fault == "kept":
            raise KafkaTimeoutError("the answer was lost")
        return positions


@asynccontextmanager
async def api_process(
    namespace: Namespace, *, max_message_bytes: int = 1_048_576, **timing: float
) -> AsyncIterator[tuple[WritePath, FaultyLog, KafkaLogHistory]]:
    s = namespace.settings
    await ensure_topics(s.kafka_bootstrap, s.topic_prefix, 1)
    real = KafkaEventLog(s.kafka_bootstrap, s.topic_prefix, max_message_bytes=max_message_bytes)
    await real.start()
    faulty = FaultyLog(real)
    client = aioredis.Redis.from_url(s.redis_url)
    history = KafkaLogHistory(s.kafka_bootstrap, s.topic_prefix)
    try:
        path = WritePath(
            faulty, RedisDecisionStore(client, s.topic_prefix), history, Timing(**timing)
        )
        await path.ensure_ready([locations.SLICE])
        yield path, faulty, history
    finally:
        await real.stop()
        await client.aclose()


def ref(location_id: str, evse_uid: str | None = None) -> LocationObjectRef:
    return LocationObjectRef(
        country_code="NL", party_id="ABC", location_id=location_id, evse_uid=evse_uid
    )


async def _events_of(history: KafkaLogHistory, key: str) -> list[EventMeta]:
    return [event async for _, _, event in history.scan(LOCATIONS) if event.aggregate_key == key]


async def test_an_answer_lost_after_kafka_kept_the_event_is_answered_recorded(
    namespace: Namespace,
) -> None:
    loc = f"L{uuid.uuid4().hex[:8]}"
    key = ref(loc).location_key
    async with api_process(namespace) as (path, faulty, history):
        faulty.fault = "kept"
        created = await path.write(
            locations.SLICE,
            key,
            lambda s: decide(s, PutObject(ref(loc), location(loc), ORIGIN), T0),
        )
        assert created is True  # read back from the partition: recorded
        # The state was committed: the next write decides on it at once.
        body = {"status": "CHARGING", "last_updated": "2026-03-01T09:00:00Z"}
        await path.write(
            locations.SLICE,
            key,
            lambda s: decide(s, PatchObject(ref(loc, "EVSE1"), body, ORIGIN), T0),
        )
        state = await path.state(locations.SLICE, key)
        assert state is not None and state.asserted is not None
        assert state.asserted["evses"][0]["status"] == "CHARGING"
        assert len(await _events_of(history, key)) == 2


async def test_a_send_of_unknown_fate_that_did_not_land_is_never_called_not_recorded(
    namespace: Namespace,
) -> None:
    loc = f"L{uuid.uuid4().hex[:8]}"
    key = ref(loc).location_key
    async with api_process(namespace, fate_window_s=1.5, hold_timeout_s=0.1) as (
        path,
        faulty,
        history,
    ):
        faulty.fault = "lost"
        with pytest.raises(OutcomeUnknownError, match="may have been recorded"):
            await path.write(
                locations.SLICE,
                key,
                lambda s: decide(s, PutObject(ref(loc), location(loc), ORIGIN), T0),
            )
        # Held for the fate window: nobody decides while a send may land.
        with pytest.raises(UnavailableError):
            await path.write(
                locations.SLICE,
                key,
                lambda s: decide(s, PutObject(ref(loc), location(loc), ORIGIN), T0),
            )
        await asyncio.sleep(1.6)
        # The retry with the same body, read back from the log first: created.
        created = await path.write(
            locations.SLICE,
            key,
            lambda s: decide(s, PutObject(ref(loc), location(loc), ORIGIN), T0),
        )
        assert created is True
        assert len(await _events_of(history, key)) == 1


async def test_an_event_beyond_the_message_limit_is_refused_before_it_is_sent(
    namespace: Namespace,
) -> None:
    loc = f"L{uuid.uuid4().hex[:8]}"
    key = ref(loc).location_key
    big = location(loc, evses=[evse(f"E{i:05d}") for i in range(400)])
    async with api_process(namespace, max_message_bytes=64 * 1024) as (path, _, history):
        with pytest.raises(RefusedError) as refused:
            await path.write(
                locations.SLICE, key, lambda s: decide(s, PutObject(ref(loc), big, ORIGIN), T0)
            )
        assert refused.value.http_status == 413
        assert "too large to record" in refused.value.message
        # Nothing sent, nothing held: the object stays writable at once.
        small = location(loc)
        assert await path.write(
            locations.SLICE, key, lambda s: decide(s, PutObject(ref(loc), small, ORIGIN), T0)
        )
        assert len(await _events_of(history, key)) == 1


async def test_the_kafka_log_refuses_too_large_events_itself_and_reports_not_sent(
    namespace: Namespace,
) -> None:
    s = namespace.settings
    loc = f"L{uuid.uuid4().hex[:8]}"
    event = decide(
        None,
        PutObject(ref(loc), location(loc, evses=[evse(f"E{i:05d}") for i in range(6000)]), ORIGIN),
        T0,
    ).events
    small = decide(None, PutObject(ref(loc), location(loc), ORIGIN), T0).events
    log = KafkaEventLog(s.kafka_bootstrap, s.topic_prefix)
    with pytest.raises(NotSentError):
        await log.append(small)  # not started: nothing can be sent
    await log.start()
    try:
        with pytest.raises(EventTooLargeError) as too_large:
            await log.append(event)
        assert too_large.value.size > too_large.value.limit == 1_048_576
    finally:
        await log.stop()
