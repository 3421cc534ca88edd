"""The counts a view keeps for X-Total-Count (projections/mongo/counts.py)
against the real document store: after any batching, re-delivery, a crash
between the counts and the documents, a second writer, and a replay, each
count equals a real count of the served documents."""

from __future__ import annotations

import random
import uuid
import zlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient, MongoClient
from pymongo.database import Database

from projections.mongo import locations, tariffs
from projections.mongo.counts import COLLECTION as COUNTS
from projections.mongo.folding import Doc, FoldingWriter
from projections.mongo.locations import LocationViewQuery, LocationViewWriter
from projections.mongo.tariffs import TariffViewQuery, TariffViewWriter
from projections.position import Record
from schemas.events import LocationObjectPatched, LocationObjectPut, Party, TariffDeleted
from schemas.events.locations import LocationObjectPatchedPayload, LocationObjectPutPayload
from schemas.events.tariffs import TariffPut
from schemas.ocpi.common import format_ocpi_datetime
from schemas.ocpi.locations import EvseStatus as S
from tests.integration.test_tariff_view import delete_event, put_event
from tests.ocpi_objects import location
from tests.services import Namespace
from tests.unit.factories import resolved

T0 = datetime(2026, 3, 1, 8, tzinfo=UTC)
PARTIES = (("NL", "ABC"), ("DE", "XYZ"))
PARTITIONS = 3


@pytest.fixture(scope="module")
def client(namespace: Namespace) -> Iterator[MongoClient[Doc]]:
    c: MongoClient[Doc]
    with MongoClient(namespace.settings.mongo_url, tz_aware=True) as c:
        yield c


@pytest.fixture
def fresh(client: MongoClient[Doc], namespace: Namespace) -> Iterator[list[Database[Doc]]]:
    """Databases made on demand, dropped after the test."""
    made: list[Database[Doc]] = []
    yield made
    for db in made:
        client.drop_database(db.name)


def new_db(client: MongoClient[Doc], namespace: Namespace, made: list[Database[Doc]]) -> Any:
    db: Database[Doc] = client[f"{namespace.name}_cnt{len(made)}"]
    made.append(db)
    return db


def partition_of(key: str) -> int:
    return zlib.crc32(key.encode()) % PARTITIONS


class Log:
    """Records as Kafka would hold them: offsets per topic partition."""

    def __init__(self) -> None:
        self.records: list[Record[object]] = []
        self._next: dict[tuple[str, int], int] = {}

    def add(self, topic: str, key: str, event: Any) -> None:
        partition = partition_of(key)
        offset = self._next.get((topic, partition), 0)
        self._next[(topic, partition)] = offset + 1
        self.records.append(Record(topic, partition, offset, event))


def _put(cc: str, pid: str, location_id: str, at: datetime) -> LocationObjectPut:
    stamp = format_ocpi_datetime(at)
    body = location(location_id, country_code=cc, party_id=pid, at=stamp)
    return LocationObjectPut(
        event_id=uuid.uuid4(),
        aggregate_key=f"{cc}/{pid}/{location_id}",
        occurred_at=at,
        recorded_at=at,
        source=Party(country_code=cc, party_id=pid),
        correlation_id="counts",
        payload=LocationObjectPutPayload(
            country_code=cc, party_id=pid, location_id=location_id, object=body, last_updated=at
        ),
    )


def _patch(cc: str, pid: str, location_id: str, at: datetime) -> LocationObjectPatched:
    return LocationObjectPatched(
        event_id=uuid.uuid4(),
        aggregate_key=f"{cc}/{pid}/{location_id}",
        occurred_at=at,
        recorded_at=at,
        source=Party(country_code=cc, party_id=pid),
        correlation_id="counts",
        payload=LocationObjectPatchedPayload(
            country_code=cc,
            party_id=pid,
            location_id=location_id,
            patch={"name": f"at {at.isoformat()}", "last_updated": format_ocpi_datetime(at)},
            last_updated=at,
        ),
    )


def location_log(rng: random.Random, events: int) -> Log:
    """PUTs, location PATCHes (some before any PUT: not served, not counted)
    and resolved statuses of 30 locations of two parties."""
    log = Log()
    ids = [(cc, pid, f"L{i:02d}") for i in range(30) for cc, pid in [rng.choice(PARTIES)]]
    at = T0
    for _ in range(events):
        at += timedelta(seconds=1)
        cc, pid, location_id = rng.choice(ids)
        key = f"{cc}/{pid}/{location_id}"
        kind = rng.random()
        if kind < 0.3:
            log.add("ocpi.locations.v1", key, _put(cc, pid, location_id, at))
        elif kind < 0.6:
            log.add("ocpi.locations.v1", key, _patch(cc, pid, location_id, at))
        else:
            rec = resolved(S.CHARGING, evse_uid="EVSE1", location_id=location_id, at=at)
            event = rec.event.model_copy(
                update={
                    "aggregate_key": key,
                    "payload": rec.event.payload.model_copy(
                        update={"country_code": cc, "party_id": pid}
                    ),
                }
            )
            log.add("ocpi.evse-status.v1", key, event)
    return log


def batches(
    rng: random.Random, records: Sequence[Record[object]]
) -> Iterator[list[Record[object]]]:
    i = 0
    while i < len(records):
        n = rng.randint(1, 25)
        yield list(records[i : i + n])
        i += n


def served_per_owner(db: Database[Doc], collection: str) -> dict[str, int]:
    counted: dict[str, int] = {}
    for doc in db[collection].find({"_ts": {"$ne": None}}, {"country_code": 1, "party_id": 1}):
        owner = f"{doc['country_code']}/{doc['party_id']}"
        counted[owner] = counted.get(owner, 0) + 1
    return counted


async def assert_location_counts_exact(db: Database[Doc], aio: AsyncMongoClient[Doc]) -> None:
    """The totals the API reads (on its async client) against the documents."""
    real = served_per_owner(db, locations.COLLECTION)
    query = LocationViewQuery(aio[db.name])
    for cc, pid in PARTIES:
        page = await query.page(country_code=cc, party_id=pid, limit=1)
        assert page.total == real.get(f"{cc}/{pid}", 0), (cc, pid)
    assert (await query.page(limit=1)).total == sum(real.values())


def counters(db: Database[Doc]) -> dict[str, int]:
    return {d["_id"]: d["n"] for d in db[COUNTS].find()}


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_location_counts_stay_exact_through_batches_redelivery_and_replay(
    aio_mongo: AsyncMongoClient[Doc],
    client: MongoClient[Doc],
    namespace: Namespace,
    fresh: list[Database[Doc]],
    seed: int,
) -> None:
    rng = random.Random(seed)
    log = location_log(rng, 300)
    db = new_db(client, namespace, fresh)
    writer = LocationViewWriter(db)
    writer.prepare()
    applied = 0
    for batch in batches(rng, log.records):
        writer.apply(batch)
        applied += len(batch)
        await assert_location_counts_exact(db, aio_mongo)
        if rng.random() < 0.2:
            # A consumer restarted from an older commit: a stretch again,
            # split differently, by a writer with nothing cached.
            start = rng.randrange(applied)
            again = LocationViewWriter(db)
            for redelivered in batches(rng, log.records[start:applied]):
                again.apply(redelivered)
            await assert_location_counts_exact(db, aio_mongo)
    assert served_per_owner(db, locations.COLLECTION)  # the log did serve locations

    # A replay into an empty database, in one batch: the same counts.
    replayed = new_db(client, namespace, fresh)
    LocationViewWriter(replayed).prepare()
    LocationViewWriter(replayed).apply(log.records)
    await assert_location_counts_exact(replayed, aio_mongo)
    assert counters(replayed) == counters(db)


class CrashError(Exception):
    pass


async def test_a_crash_between_the_counts_and_the_documents_counts_once(
    aio_mongo: AsyncMongoClient[Doc],
    client: MongoClient[Doc],
    namespace: Namespace,
    fresh: list[Database[Doc]],
) -> None:
    rng = random.Random(7)
    log = location_log(rng, 120)
    db = new_db(client, namespace, fresh)
    LocationViewWriter(db).prepare()
    for batch in batches(rng, log.records):
        crashing = LocationViewWriter(db)
        real_write = crashing._coll.bulk_write

        def crash(*args: Any, **kwargs: Any) -> Any:
            raise CrashError  # after the counters moved, before any document

        crashing._coll.bulk_write = crash  # type: ignore[method-assign]
        with pytest.raises(CrashError):
            crashing.apply(batch)
        crashing._coll.bulk_write = real_write  # type: ignore[method-assign]
        # The batch is delivered again (no offset was committed).
        LocationViewWriter(db).apply(batch)
        await assert_location_counts_exact(db, aio_mongo)


async def test_two_writers_of_the_same_records_count_each_once(
    aio_mongo: AsyncMongoClient[Doc],
    client: MongoClient[Doc],
    namespace: Namespace,
    fresh: list[Database[Doc]],
) -> None:
    """A zombie consumer and its successor apply the same stretch of the log,
    split differently, one batch each in turn."""
    rng = random.Random(11)
    log = location_log(rng, 200)
    db = new_db(client, namespace, fresh)
    a, b = LocationViewWriter(db), LocationViewWriter(db)
    a.prepare()
    first = list(batches(rng, log.records))
    second = list(batches(rng, log.records))
    for i in range(max(len(first), len(second))):
        if i < len(first):
            a.apply(first[i])
        if i < len(second):
            b.apply(second[i])
    await assert_location_counts_exact(db, aio_mongo)


def tariff_log(rng: random.Random, events: int) -> Log:
    """Tariffs PUT, DELETEd and PUT again (a count goes down and up)."""
    log = Log()
    minutes = 0.0
    for _ in range(events):
        minutes += 1
        tariff_id = f"T{rng.randrange(12):02d}"
        key = f"NL/ABC/{tariff_id}"
        event: TariffPut | TariffDeleted
        if rng.random() < 0.35:
            event = delete_event(tariff_id, minutes)
        else:
            event = put_event(tariff_id, minutes)
        log.add("ocpi.tariffs.v1", key, event)
    return log


async def test_tariff_counts_follow_deletions_exactly(
    aio_mongo: AsyncMongoClient[Doc],
    client: MongoClient[Doc],
    namespace: Namespace,
    fresh: list[Database[Doc]],
) -> None:
    rng = random.Random(5)
    log = tariff_log(rng, 200)
    db = new_db(client, namespace, fresh)
    writer: FoldingWriter = TariffViewWriter(db)
    writer.prepare()
    query = TariffViewQuery(aio_mongo[db.name])
    seen_counts = set()
    applied = 0
    for batch in batches(rng, log.records):
        writer.apply(batch)
        applied += len(batch)
        if rng.random() < 0.3:
            for redelivered in batches(rng, log.records[rng.randrange(applied) : applied]):
                TariffViewWriter(db).apply(redelivered)
        real = served_per_owner(db, tariffs.COLLECTION).get("NL/ABC", 0)
        total = (await query.page(country_code="NL", party_id="ABC", limit=1)).total
        assert total == real
        seen_counts.add(total)
    assert len(seen_counts) > 3  # it moved both ways, not just up
    replayed = new_db(client, namespace, fresh)
    TariffViewWriter(replayed).prepare()
    TariffViewWriter(replayed).apply(log.records)
    assert counters(replayed) == counters(db)


async def test_a_window_is_counted_in_the_index_not_from_the_counts(
    aio_mongo: AsyncMongoClient[Doc],
    client: MongoClient[Doc],
    namespace: Namespace,
    fresh: list[Database[Doc]],
) -> None:
    rng = random.Random(3)
    log = location_log(rng, 150)
    db = new_db(client, namespace, fresh)
    LocationViewWriter(db).prepare()
    LocationViewWriter(db).apply(log.records)
    db[COUNTS].delete_many({})  # were the counts read, the window would say 0
    start, end = T0 + timedelta(seconds=40), T0 + timedelta(seconds=110)
    page = await LocationViewQuery(aio_mongo[db.name]).page(
        country_code="NL", party_id="ABC", date_from=start, date_to=end, limit=500
    )
    assert page.total == len(page.items) > 0
