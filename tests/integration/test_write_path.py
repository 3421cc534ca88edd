"""The one write path on the real Kafka and Redis: two API processes (two
WritePath instances, their own producers) writing one location never decide
on the same state; a holder that dies after its append is recovered from the
partition; an empty decision store is rebuilt from the topic."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis

from producers import locations
from producers.decision_store import RedisDecisionStore
from producers.locations import PatchObject, PutObject, decide
from producers.log import KafkaEventLog, KafkaLogHistory, ensure_topics
from producers.write_path import Decision, Origin, Timing, WritePath, partition_for
from schemas.events import LocationObjectPatched, Party
from schemas.events.locations import LocationObjectRef
from schemas.ocpi.common import format_ocpi_datetime, parse_ocpi_datetime
from schemas.topics import LOCATIONS
from tests.ocpi_objects import AT, location
from tests.services import Namespace

T0 = datetime(2026, 3, 1, 8, tzinfo=UTC)
ORIGIN = Origin(Party(country_code="NL", party_id="ABC"), "c-1")


@asynccontextmanager
async def api_process(namespace: Namespace, **timing: float) -> AsyncIterator[WritePath]:
    """What one API process holds: its own producer, Redis client and path."""
    s = namespace.settings
    await ensure_topics(s.kafka_bootstrap, s.topic_prefix, 1)
    log = KafkaEventLog(s.kafka_bootstrap, s.topic_prefix)
    await log.start()
    client = aioredis.Redis.from_url(s.redis_url)
    try:
        path = WritePath(
            log,
            RedisDecisionStore(client, s.topic_prefix),
            KafkaLogHistory(s.kafka_bootstrap, s.topic_prefix),
            Timing(**timing),
        )
        await path.ensure_ready([locations.SLICE])
        yield path
    finally:
        await log.stop()
        await client.aclose()


def ref(location_id: str, evse_uid: str | None = None) -> LocationObjectRef:
    return LocationObjectRef(
        country_code="NL", party_id="ABC", location_id=location_id, evse_uid=evse_uid
    )


async def test_two_processes_write_one_location_without_losing_a_patch(
    namespace: Namespace,
) -> None:
    loc = f"L{uuid.uuid4().hex[:8]}"
    async with api_process(namespace) as first, api_process(namespace) as second:
        created = await first.write(
            locations.SLICE,
            ref(loc).location_key,
            lambda s: decide(s, PutObject(ref(loc), location(loc), ORIGIN), T0),
        )
        assert created is True
        # PATCHes right after the PUT, from both processes at once. Each one
        # stamps the EVSE one second after the stamp it finds: two decisions
        # on the same state would write the same stamp, and the count of
        # seconds would come out short.
        seen: list[str] = []

        async def patch(path: WritePath) -> None:
            def judge(state: locations.LocationState | None) -> Decision[bool]:
                assert state is not None and state.asserted is not None
                found = state.asserted["evses"][0]["last_updated"]
                seen.append(found)
                at = parse_ocpi_datetime(found) + timedelta(seconds=1)
                body = {"status": "CHARGING", "last_updated": format_ocpi_datetime(at)}
                return decide(state, PatchObject(ref(loc, "EVSE1"), body, ORIGIN), T0)

            await path.write(locations.SLICE, ref(loc).location_key, judge)

        await asyncio.gather(*(patch((first, second)[i % 2]) for i in range(40)))
        assert len(set(seen)) == 40
        final = await first.state(locations.SLICE, ref(loc).location_key)
        assert final is not None and final.asserted is not None
        evse = final.asserted["evses"][0]
        assert evse["status"] == "CHARGING"
        assert parse_ocpi_datetime(evse["last_updated"]) == parse_ocpi_datetime(AT) + timedelta(
            seconds=40
        )
        # The state is where the log says it is.
        at = await second.position(locations.SLICE, ref(loc).location_key)
        assert at is not None and at[0] == partition_for(
            ref(loc).location_key, LOCATIONS.partitions
        )


async def test_a_process_that_dies_after_its_append_is_recovered_from_the_log(
    namespace: Namespace,
) -> None:
    loc = f"L{uuid.uuid4().hex[:8]}"
    key = ref(loc).location_key
    s = namespace.settings
    async with api_process(namespace, hold_ttl_s=2, hold_timeout_s=0.2) as survivor:
        await survivor.write(
            locations.SLICE,
            key,
            lambda st: decide(st, PutObject(ref(loc), location(loc), ORIGIN), T0),
        )
        # The doomed process holds the location, appends a PATCH to Kafka, and
        # is gone before it commits.
        client = aioredis.Redis.from_url(s.redis_url)
        doomed_log = KafkaEventLog(s.kafka_bootstrap, s.topic_prefix)
        await doomed_log.start()
        try:
            store = RedisDecisionStore(client, s.topic_prefix)
            now = int(time.time() * 1000)
            await store.claim(
                locations.SLICE.name, key, "doomed", now_ms=now, ttl_ms=2000, have=None
            )
            body = {"status": "BLOCKED", "last_updated": "2026-03-01T09:00:00Z"}
            held = await survivor.state(locations.SLICE, key)
            patched = decide(held, PatchObject(ref(loc, "EVSE1"), body, ORIGIN), T0).events
            await doomed_log.append(patched, partition=partition_for(key, LOCATIONS.partitions))
        finally:
            await doomed_log.stop()
            await client.aclose()
        await asyncio.sleep(2.1)  # its hold runs out
        seen: list[str] = []

        def judge(state: locations.LocationState | None) -> Decision[bool]:
            assert state is not None and state.asserted is not None
            seen.append(state.asserted["evses"][0]["status"])
            body = {"status": "AVAILABLE", "last_updated": "2026-03-01T09:05:00Z"}
            return decide(state, PatchObject(ref(loc, "EVSE1"), body, ORIGIN), T0)

        await survivor.write(locations.SLICE, key, judge)
        assert seen == ["BLOCKED"]  # the dead process's PATCH, read back from the log


async def test_an_empty_store_is_rebuilt_from_the_topic(namespace: Namespace) -> None:
    loc = f"L{uuid.uuid4().hex[:8]}"
    key = ref(loc).location_key
    s = namespace.settings
    async with api_process(namespace) as first:
        await first.write(
            locations.SLICE,
            key,
            lambda st: decide(st, PutObject(ref(loc), location(loc), ORIGIN), T0),
        )
        body = {"status": "BLOCKED", "last_updated": "2026-03-01T09:00:00Z"}
        await first.write(
            locations.SLICE,
            key,
            lambda st: decide(st, PatchObject(ref(loc, "EVSE1"), body, ORIGIN), T0),
        )
        before = await first.position(locations.SLICE, key)
    # The store loses everything (a Redis restart without persistence).
    client = aioredis.Redis.from_url(s.redis_url)
    try:
        doomed = [k async for k in client.scan_iter(match=f"{s.topic_prefix}ocpi-hub:ws:*")]
        await client.delete(*doomed)
    finally:
        await client.aclose()
    async with api_process(namespace) as restarted:
        state = await restarted.state(locations.SLICE, key)
        assert state is not None and state.asserted is not None
        assert state.asserted["evses"][0]["status"] == "BLOCKED"
        assert await restarted.position(locations.SLICE, key) == before


async def test_the_history_reads_one_keys_recent_events(namespace: Namespace) -> None:
    s = namespace.settings
    await ensure_topics(s.kafka_bootstrap, s.topic_prefix, 1)
    log = KafkaEventLog(s.kafka_bootstrap, s.topic_prefix)
    await log.start()
    loc = f"L{uuid.uuid4().hex[:8]}"
    key = ref(loc).location_key
    partition = partition_for(key, LOCATIONS.partitions)
    try:
        put = decide(None, PutObject(ref(loc), location(loc), ORIGIN), T0).events
        [first] = await log.append(put, partition=partition)
        since = int(time.time() * 1000)
        body = {"status": "BLOCKED", "last_updated": "2026-03-01T09:00:00Z"}
        state = locations.SLICE.fold(None, put)
        patched = decide(state, PatchObject(ref(loc, "EVSE1"), body, ORIGIN), T0).events
        [second] = await log.append(patched, partition=partition)
    finally:
        await log.stop()
    history = KafkaLogHistory(s.kafka_bootstrap, s.topic_prefix)
    everything = await history.events_of(LOCATIONS, partition, key, since_ms=0, after=None)
    assert [o for o, _ in everything] == [first.offset, second.offset]
    recent = await history.events_of(LOCATIONS, partition, key, since_ms=0, after=first.offset)
    assert [type(e) for _, e in recent] == [LocationObjectPatched]
    later = await history.events_of(LOCATIONS, partition, key, since_ms=since + 60_000, after=None)
    assert later == []
    other = await history.events_of(LOCATIONS, partition, key + "X", since_ms=0, after=None)
    assert other == []
    assert await history.partitions(LOCATIONS) == LOCATIONS.partitions
