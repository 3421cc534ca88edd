"""The evse_status_history view against the real document store
(projections/mongo/evse_status_history.py): one entry per resolved status,
a re-delivery changes nothing, each EVSE keeps its newest entries, a
location's entries read back newest first, and a replay in other batches
builds the same documents."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import AsyncMongoClient, MongoClient
from pymongo.database import Database

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


async def test_entries_are_kept_per_evse_and_read_newest_first(
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
    assert writer.apply(batch[7:]) == 14
    coll = db[COLLECTION]
    held = {d["_id"]: d for d in coll.find({})}
    # Re-delivered: the kept entries are there already; the pruned ones are
    # written again and pruned again in the same batch.
    writer.apply(batch)
    assert {d["_id"]: d for d in coll.find({})} == held
    assert coll.count_documents({"location": "ZZ/HUB/DEPOT"}) == 2 * kept
    for uid in ("E1", "E2"):
        offsets = sorted(
            d["offset"] for d in coll.find({"evse_uid": uid, "location": "ZZ/HUB/DEPOT"})
        )
        assert offsets == [n for n in range(20) if (n % 2 == 1) == (uid == "E1")][-kept:]

    newest = await query.recent("zz", "hub", "depot", limit=4)
    assert [d["offset"] for d in newest] == [19, 18, 17, 16]
    first = newest[0]
    assert (first["evse_uid"], first["status"], first["signal"], first["party"]) == (
        "E1",
        STATUSES[19 % 3].value,
        "charger",
        "ZZ-HUB",
    )
    assert first["last_updated"] == T0 + timedelta(minutes=19)
    other = await query.recent("ZZ", "HUB", "OTHER", limit=10)
    assert [(d["evse_uid"], d["signal"]) for d in other] == [("E1", "owner")]
    assert await query.recent("ZZ", "HUB", "NOPE", limit=10) == []

    # A pruned entry delivered alone is pruned again; the rest stays as it was.
    before = {d["_id"]: d for d in coll.find({})}
    writer.apply([batch[0], batch[1]])
    assert {d["_id"]: d for d in coll.find({})} == before

    # A replay in one batch builds the same documents.
    writer.wipe()
    assert writer.apply(batch) == len(batch)
    assert {d["_id"]: d for d in coll.find({})} == before


def test_an_evse_is_pruned_when_first_seen_then_every_few_entries(db: Database[Doc]) -> None:
    kept, every = 3, 4
    coll = db[COLLECTION]
    # What an earlier process left: 10 entries of E1, never pruned.
    left = [history_entry(resolved(n, "E1", "status")) for n in range(10)]
    coll.insert_many([d for d in left if d is not None])
    assert coll.count_documents({"evse_uid": "E1"}) == 10

    writer = EvseStatusHistoryWriter(db, kept=kept, prune_every=every)
    writer.prepare()

    def held() -> list[int]:
        return sorted(d["offset"] for d in coll.find({"evse_uid": "E1"}))

    # First sight in this process: pruned to the newest `kept` at once.
    writer.apply([resolved(10, "E1", "status")])
    assert held() == [8, 9, 10]
    # Then left to grow until `every` more entries were written...
    writer.apply([resolved(n, "E1", "status") for n in (11, 12)])
    writer.apply([resolved(13, "E1", "status")])
    assert held() == [8, 9, 10, 11, 12, 13]
    # ...and pruned by the batch that reaches it.
    writer.apply([resolved(14, "E1", "status")])
    assert held() == [12, 13, 14]


@pytest.mark.parametrize("emptied_by", ["prepare", "wipe"])
def test_an_evse_in_a_collection_that_started_empty_waits_for_its_interval(
    db: Database[Doc], emptied_by: str
) -> None:
    kept, every = 2, 4
    coll = db[COLLECTION]
    writer = EvseStatusHistoryWriter(db, kept=kept, prune_every=every)
    if emptied_by == "wipe":
        # Entries of before the rebuild, and a process that has seen E1.
        writer.prepare()
        writer.apply([resolved(n, "E1", "status") for n in range(6)])
        writer.wipe()
    else:
        writer.prepare()  # a first start: nothing held

    def held() -> list[int]:
        return sorted(d["offset"] for d in coll.find({"evse_uid": "E1"}))

    # Everything E1 holds was written by this process: no prune at first
    # sight (it would delete nothing this process did not count)...
    writer.apply([resolved(n, "E1", "status") for n in (10, 11, 12)])
    assert held() == [10, 11, 12]
    # ...and the interval still bounds it.
    writer.apply([resolved(13, "E1", "status")])
    assert held() == [12, 13]
