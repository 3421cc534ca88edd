"""The MongoDB location view against the real document store: the fold,
its guard, and the keyset pages the Sender list is served from."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import AsyncMongoClient, MongoClient
from pymongo.database import Database

from projections.mongo.folding import Doc
from projections.mongo.locations import COLLECTION, LocationViewQuery, LocationViewWriter
from projections.position import Record
from schemas.ocpi.common import format_ocpi_datetime, sort_stamp
from schemas.ocpi.locations import EvseStatus as S
from tests.ocpi_objects import location
from tests.services import Namespace
from tests.unit.factories import T0, patch, put, resolved


@pytest.fixture(scope="module")
def db(namespace: Namespace) -> Iterator[Database[Doc]]:
    with MongoClient(namespace.settings.mongo_url) as client:
        database: Database[Doc] = client[f"{namespace.name}_locview"]
        LocationViewWriter(database).prepare()
        yield database
        client.drop_database(database.name)


@pytest.fixture(autouse=True)
def empty(db: Database[Doc]) -> None:
    LocationViewWriter(db).wipe()  # the documents and their counts


def at(minutes: float) -> str:
    return format_ocpi_datetime(T0 + timedelta(minutes=minutes))


async def test_written_once_and_redelivery_changes_nothing(
    aio_mongo: AsyncMongoClient[Doc], db: Database[Doc]
) -> None:
    writer = LocationViewWriter(db)
    batch: list[Record[object]] = [
        put(location(), offset=10),
        put(location("LOC2"), location_id="LOC2", offset=11),
        patch({"status": "CHARGING", "last_updated": at(1)}, evse_uid="EVSE1", offset=12),
        resolved(S.OUTOFORDER, evse_uid="EVSE1", location_id="LOC2", at=T0 + timedelta(minutes=2)),
    ]
    assert writer.apply(batch) == 2
    before = list(db[COLLECTION].find().sort("_id"))
    assert writer.apply(batch) == 0  # at-least-once: the same batch again
    assert list(db[COLLECTION].find().sort("_id")) == before
    query = LocationViewQuery(aio_mongo[db.name])
    loc1 = await query.get("nl", "abc", "loc1")  # CiString lookups
    loc2 = await query.get("NL", "ABC", "LOC2")
    assert loc1 is not None and loc2 is not None
    assert loc1["evses"][0]["status"] == "CHARGING"
    assert loc2["evses"][0]["status"] == "OUTOFORDER"
    assert "_positions" not in loc1 and "state" not in loc1


def test_a_writer_that_fell_behind_cannot_go_back_in_time(db: Database[Doc]) -> None:
    writer = LocationViewWriter(db)
    writer.apply([put(location(), offset=1)])
    # Another writer (a zombie consumer, an in-place replay) got further meanwhile.
    LocationViewWriter(db).apply([patch({"name": "new", "last_updated": at(5)}, offset=5)])
    writer.apply([patch({"name": "older offset", "last_updated": at(9)}, offset=3)])
    doc = db[COLLECTION].find_one({"_id": "NL/ABC/LOC1"})
    assert doc is not None
    assert doc["location"]["name"] == "new"
    assert doc["_positions"] == {"ocpi_locations_v1@0": 5}


async def test_pages_are_oldest_first_filtered_and_keyset(
    aio_mongo: AsyncMongoClient[Doc], db: Database[Doc]
) -> None:
    records: list[Record[object]] = [
        put(location(f"L{i:02}", at=at(i % 7 + i / 100)), location_id=f"L{i:02}", offset=i)
        for i in range(20)
    ]
    # Another party's locations never show in a party's list.
    other = put(location("X1", country_code="DE"), location_id="X1", country_code="DE", offset=99)
    LocationViewWriter(db).apply([*records, other])
    query = LocationViewQuery(aio_mongo[db.name])
    seen: list[str] = []
    after = None
    total = None
    while True:
        page = await query.page(country_code="NL", party_id="ABC", after=after, limit=6)
        total = page.total
        if not page.items:
            break
        seen += [item["id"] for item in page.items]
        after = page.last
    assert total == 20
    expected = sorted(
        records, key=lambda r: (r.event.payload.last_updated, r.event.payload.location_id)
    )  # type: ignore[attr-defined]
    assert seen == [r.event.payload.location_id for r in expected]  # type: ignore[attr-defined]
    # date_from inclusive, date_to exclusive; a plain offset works too.
    window = await query.page(
        country_code="nl",
        party_id="abc",
        date_from=datetime(2026, 1, 1, 12, 2, tzinfo=UTC),
        date_to=datetime(2026, 1, 1, 12, 4, tzinfo=UTC),
        limit=100,
    )
    assert window.total == len(window.items) == 6
    stamps = [sort_stamp(item["last_updated"]) for item in window.items]
    assert all(sort_stamp(at(2)) <= stamp < sort_stamp(at(4)) for stamp in stamps)
    assert (
        (await query.page(country_code="NL", party_id="ABC", skip=18, limit=6)).items
        == [
            await query.get("NL", "ABC", r.event.payload.location_id)  # type: ignore[attr-defined]
            for r in expected[18:]
        ]
    )


async def test_keyset_pages_split_equal_timestamps_without_loss_or_repeat(
    aio_mongo: AsyncMongoClient[Doc], db: Database[Doc]
) -> None:
    same = at(30)
    records: list[Record[object]] = [
        put(location(f"EQ{i}", at=same), location_id=f"EQ{i}", offset=i) for i in range(7)
    ]
    records.append(put(location("LATE", at=at(31)), location_id="LATE", offset=7))
    LocationViewWriter(db).apply(records)
    query = LocationViewQuery(aio_mongo[db.name])
    pages: list[list[str]] = []
    after = None
    while True:
        page = await query.page(country_code="NL", party_id="ABC", after=after, limit=3)
        if not page.items:
            break
        pages.append([item["id"] for item in page.items])
        after = page.last
    assert pages == [["EQ0", "EQ1", "EQ2"], ["EQ3", "EQ4", "EQ5"], ["EQ6", "LATE"]]
