"""The evse_status_history view against the real document store
(projections/mongo/evse_status_history.py): one entry per resolved status
in a chunk per location and batch, a re-delivery in other batches changes
nothing a reader sees, each location keeps its newest entries, which read
back newest first, and a replay in one batch holds the same entries."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import AsyncMongoClient, MongoClient
from pymongo.database import Database

from projections.mongo import chunks
from projections.mongo.evse_status_history import (
    COLLECTION,
    EvseStatusHistoryQuery,
    EvseStatusHistoryWriter,
    history_entry,
)
from projections.mongo.folding import Doc
from projections.position import Record
from schemas.events import EvseStatusResolved, Party
from schemas.events.locations import EvseStatusResolvedPayload, ResolutionCause, location_key
from schemas.ocpi.locations import EvseStatus
from tests.services import Namespace

T0 = datetime(2026, 6, 1, 10, tzinfo=UTC)
STATUSES = [EvseStatus.AVAILABLE, EvseStatus.CHARGING, EvseStatus.OUTOFORDER]


@pytest.fixture
def db(namespace: Namespace) -> Iterator[Database[Doc]]:
    with MongoClient(namespace.settings.mongo_url, tz_aware=True) as client:
        database: Database[Doc] = client[f"{namespace.name}_{uuid.uuid4().hex[:6]}"]
        yield database
        client.drop_database(database.name)


def resolved(
    offset: int, evse_uid: str, cause: ResolutionCause, loc: str = "DEPOT"
) -> Record[object]:
    at = T0 + timedelta(minutes=offset)
    event = EvseStatusResolved(
        event_id=uuid.uuid4(),
        aggregate_key=location_key("ZZ", "HUB", loc),
        occurred_at=at,
        recorded_at=at,
        source=Party(country_code="ZZ", party_id="HUB"),
        correlation_id="c",
        payload=EvseStatusResolvedPayload(
            country_code="ZZ",
            party_id="HUB",
            location_id=loc,
            evse_uid=evse_uid,
            status=STATUSES[offset % 3],
            last_updated=at,
            reported_status=EvseStatus.AVAILABLE,
            cause=cause,
        ),
    )
    return Record("ocpi.evse-status.v1", 3, offset, event)


def held(db: Database[Doc], loc: str = "DEPOT") -> list[int]:
    """The offsets a location's chunks hold, each once."""
    found = db[COLLECTION].find({"key": location_key("ZZ", "HUB", loc)})
    return [entry["offset"] for entry in chunks.entries(found)]


async def test_entries_are_kept_per_location_and_read_newest_first(
    aio_mongo: AsyncMongoClient[Doc], db: Database[Doc]
) -> None:
    kept = 5
    # Pruned after every batch, so each step below is exact.
    writer = EvseStatusHistoryWriter(db, kept=kept, prune_every=1)
    writer.prepare()
    query = EvseStatusHistoryQuery(aio_mongo[db.name])
    batch = [resolved(n, "E1" if n % 2 else "E2", "charger") for n in range(20)]
    batch.append(resolved(20, "E1", "status", loc="OTHER"))
    assert writer.apply(batch[:7]) == 7
    # One chunk per location and batch.
    assert db[COLLECTION].count_documents({}) == 1
    assert writer.apply(batch[7:]) == 14
    assert db[COLLECTION].count_documents({}) == 2
    # The first chunk lay wholly beyond the newest five: deleted whole.
    assert held(db) == list(range(7, 20))
    assert held(db, "OTHER") == [20]

    newest = await query.recent("zz", "hub", "depot", limit=4)
    assert [d["offset"] for d in newest] == [19, 18, 17, 16]
    first = newest[0]
    assert (first["evse_uid"], first["status"], first["signal"], first["party"]) == (
        "E1",
        STATUSES[19 % 3].value,
        "charger",
        "ZZ-HUB",
    )
    assert (first["key"], first["location"], first["partition"]) == (
        "ZZ/HUB/DEPOT/E1",
        "ZZ/HUB/DEPOT",
        3,
    )
    assert first["last_updated"] == T0 + timedelta(minutes=19)
    other = await query.recent("ZZ", "HUB", "OTHER", limit=10)
    assert [(d["evse_uid"], d["signal"]) for d in other] == [("E1", "owner")]
    assert await query.recent("ZZ", "HUB", "NOPE", limit=10) == []

    # Re-delivered in other batches: the chunks overlap, and readers see
    # each entry once, the newest as before. (The re-delivered chunk of 0
    # to 11 brings back what was pruned, until a later prune.)
    seen = await query.recent("ZZ", "HUB", "DEPOT", limit=100)
    writer.apply(batch[:12])
    writer.apply(batch[12:])
    assert db[COLLECTION].count_documents({"key": "ZZ/HUB/DEPOT"}) == 3
    again = await query.recent("ZZ", "HUB", "DEPOT", limit=100)
    assert [d["offset"] for d in again] == list(range(19, -1, -1))
    assert again[: len(seen)] == seen
    assert held(db, "OTHER") == [20]

    # A replay in one batch holds the same newest entries.
    writer.wipe()
    assert writer.apply(batch) == len(batch)
    assert db[COLLECTION].count_documents({}) == 2
    assert (await query.recent("ZZ", "HUB", "DEPOT", limit=kept)) == seen[:kept]


def test_a_chunk_is_never_shrunk_by_a_shorter_re_delivery(db: Database[Doc]) -> None:
    writer = EvseStatusHistoryWriter(db)
    writer.prepare()
    batch = [resolved(n, "E1", "charger") for n in range(30, 36)]
    assert writer.apply(batch) == 6
    # The same first offset, a batch that ended sooner: refused, not written.
    assert writer.apply(batch[:2]) == 0
    assert held(db) == list(range(30, 36))
    [chunk] = db[COLLECTION].find({})
    assert (chunk["first"], chunk["last"], chunk["n"]) == (30, 35, 6)


def test_a_location_is_pruned_when_first_seen_then_every_few_entries(db: Database[Doc]) -> None:
    kept, every = 3, 4
    coll = db[COLLECTION]
    # What an earlier process left: ten chunks of one entry, never pruned.
    for n in range(10):
        entry = history_entry(resolved(n, "E1", "status"))
        assert entry is not None
        coll.insert_many(chunks.chunks([entry]))
    assert held(db) == list(range(10))

    writer = EvseStatusHistoryWriter(db, kept=kept, prune_every=every)
    writer.prepare()
    # First sight in this process: pruned to the newest `kept` at once.
    writer.apply([resolved(10, "E1", "status")])
    assert held(db) == [8, 9, 10]
    # Then left to grow until `every` more entries were written...
    writer.apply([resolved(n, "E2", "status") for n in (11, 12)])
    writer.apply([resolved(13, "E1", "status")])
    assert held(db) == [8, 9, 10, 11, 12, 13]
    # ...and pruned by the batch that reaches it, whole chunks at a time:
    # the chunk of 11 and 12 holds the third newest entry, so it stays.
    writer.apply([resolved(14, "E1", "status")])
    assert held(db) == [11, 12, 13, 14]


@pytest.mark.parametrize("emptied_by", ["prepare", "wipe"])
def test_a_location_in_a_collection_that_started_empty_waits_for_its_interval(
    db: Database[Doc], emptied_by: str
) -> None:
    kept, every = 2, 4
    writer = EvseStatusHistoryWriter(db, kept=kept, prune_every=every)
    if emptied_by == "wipe":
        # Entries of before the rebuild, and a process that has seen DEPOT.
        writer.prepare()
        writer.apply([resolved(n, "E1", "status") for n in range(6)])
        writer.wipe()
    else:
        writer.prepare()  # a first start: nothing held

    # Everything DEPOT holds was written by this process: no prune at first
    # sight (it would delete nothing this process did not count)...
    for n in (10, 11, 12):
        writer.apply([resolved(n, "E1", "status")])
    assert held(db) == [10, 11, 12]
    # ...and the interval still bounds it.
    writer.apply([resolved(13, "E2", "status")])
    assert held(db) == [12, 13]


async def test_entries_held_one_per_document_become_chunks_at_prepare(
    aio_mongo: AsyncMongoClient[Doc], db: Database[Doc]
) -> None:
    # As the view held them before chunks (docs/adr/0049), in
    # more than one page of the upgrade.
    old = []
    for n in range(1005):
        record = resolved(n, "E1" if n % 2 else "E2", "charger")
        entry = history_entry(record)
        assert entry is not None
        _, _, fields = entry
        old.append(
            {
                **{k: v for k, v in fields.items() if k != "evse"},
                "_id": f"{fields['evse']}|{record.position_field}|{n}",
                "key": fields["evse"],
                "location": "ZZ/HUB/DEPOT",
                "partition": 3,
                "offset": n,
            }
        )
    db[COLLECTION].insert_many(old)
    # The indexes the view had then.
    db[COLLECTION].create_index([("key", 1), ("offset", -1)])
    db[COLLECTION].create_index([("location", 1), ("offset", -1)])
    writer = EvseStatusHistoryWriter(db)
    writer.prepare()
    assert db[COLLECTION].count_documents({"entries": {"$exists": False}}) == 0
    indexes = [dict(i["key"]) for i in db[COLLECTION].list_indexes()]
    assert indexes == [{"_id": 1}, {"key": 1, "last": -1}], indexes
    assert held(db) == list(range(1005))
    newest = await EvseStatusHistoryQuery(aio_mongo[db.name]).recent("ZZ", "HUB", "DEPOT", limit=2)
    assert [(d["offset"], d["key"], d["evse_uid"], d["signal"]) for d in newest] == [
        (1004, "ZZ/HUB/DEPOT/E2", "E2", "charger"),
        (1003, "ZZ/HUB/DEPOT/E1", "E1", "charger"),
    ]
    assert newest[0]["last_updated"] == T0 + timedelta(minutes=1004)
    # A later start finds nothing left to move; a new entry is a chunk as any.
    writer.prepare()
    assert writer.apply([resolved(1005, "E1", "charger")]) == 1
    assert held(db)[-2:] == [1004, 1005]
