"""The CDR views against the real services: the MongoDB cdrs view (fold,
first CDR wins, position guard, Sender pages, reconciliation report), the
tariff history read as of an instant, and the MySQL ``cdrs`` table
(migration 0004, DECIMAL columns, guard)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pymongo import AsyncMongoClient, MongoClient
from pymongo.database import Database
from sqlalchemy import Engine, delete

from ocpi_hub.bootstrap import mysql_engine
from producers.cdrs import plan_issue, plan_receive, plan_reconciled, reconcile
from producers.write_path import Origin
from projections.mongo.cdrs import CdrViewQuery, CdrViewWriter
from projections.mongo.folding import Doc
from projections.mongo.history import (
    LocationHistoryQuery,
    LocationHistoryWriter,
    TariffHistoryQuery,
    TariffHistoryWriter,
)
from projections.mysql.cdrs import CdrRowQuery, CdrRowWriter, cdrs
from projections.mysql.migrate import migrate
from projections.position import Record
from schemas.events import LocationObjectPut, Party, TariffDeleted, TariffPut, serialize_event
from schemas.events.locations import LocationObjectPutPayload
from schemas.events.tariffs import TariffDeletedPayload, TariffPutPayload
from tests.cdr_objects import completed_session, issued_cdr, priced_location, simple_tariff
from tests.services import Namespace

NOW = datetime(2026, 6, 2, 9, 0, tzinfo=UTC)
US = Party(country_code="ZZ", party_id="HUB")
TOLERANCE = Decimal("0.01")


@pytest.fixture(scope="module")
def db(namespace: Namespace) -> Iterator[Database[Doc]]:
    with MongoClient(namespace.settings.mongo_url, tz_aware=True) as client:
        database: Database[Doc] = client[f"{namespace.name}_cdrview"]
        CdrViewWriter(database).prepare()
        TariffHistoryWriter(database).prepare()
        yield database
        client.drop_database(database.name)


@pytest.fixture(scope="module")
def engine(namespace: Namespace) -> Iterator[Engine]:
    built = mysql_engine(namespace.settings)
    migrate(built)
    migrate(built)  # idempotent
    with built.begin() as conn:
        conn.execute(delete(cdrs))
    yield built
    built.dispose()


def records() -> list[Record[object]]:
    ours = issued_cdr(NOW)
    theirs_body = {**ours.payload.cdr, "country_code": "NL", "party_id": "CPO", "id": "P-1"}
    theirs_body["tariffs"] = [{**simple_tariff(), "country_code": "NL", "party_id": "CPO"}]
    received = plan_receive(
        theirs_body,
        poster_owns=lambda cc, pid: True,
        already_held=lambda key: False,
        us=Party(country_code="NL", party_id="PEE"),  # the eMSP of the CDR's token
        token_held=lambda key: True,
        tariff_held=lambda tariff_id: True,
        origin=Origin(Party(country_code="NL", party_id="CPO"), "c"),
        event_id=uuid.uuid4(),
        now=NOW,
    )
    dearer = simple_tariff(country_code="NL", party_id="CPO", energy_price="0.40")
    result = reconcile(received.payload.cdr, dearer, tolerance=TOLERANCE, time_zone="UTC")
    reconciled = plan_reconciled(received, result, tolerance=TOLERANCE, now=NOW)
    again = plan_issue(  # the same CDR id issued again: changes nothing
        {**completed_session(), "kwh": 1},
        priced_location(tariff_ids=["CDR-T1"]),
        {"CDR-T1": simple_tariff()},
        cause_event_id=uuid.uuid4(),
        correlation_id="c",
        now=NOW,
    )
    return [
        Record("ocpi.cdrs.v1", 0, 1, ours),
        Record("ocpi.cdrs.v1", 1, 1, received),
        Record("ocpi.cdrs.v1", 1, 2, reconciled),
        Record("ocpi.cdrs.v1", 0, 2, again),
    ]


async def test_the_mongo_view_folds_guards_pages_and_reports(
    aio_mongo: AsyncMongoClient[Doc], db: Database[Doc]
) -> None:
    writer, query = CdrViewWriter(db), CdrViewQuery(aio_mongo[db.name])
    batch = records()
    assert writer.apply(batch) == 2
    assert writer.apply(batch) == 0  # re-delivered: nothing written
    doc, positions = await query.read("ZZ/HUB/OS-1")
    assert doc is not None and doc["role"] == "issued"
    assert doc["cdr"]["total_cost"]["excl_vat"] == 3.575  # the first CDR stayed
    assert positions == {"ocpi_cdrs_v1@0": 2}
    page = await query.page(country_code="ZZ", party_id="HUB", token_parties=["NL/PEE"], limit=10)
    assert [c["id"] for c in page.items] == ["OS-1"] and page.total == 1
    other = await query.page(country_code="ZZ", party_id="HUB", token_parties=["DE/XYZ"], limit=10)
    assert other.items == []
    [row] = await query.reconciliation(only_discrepancies=True)
    assert row["cdr_key"] == "NL/CPO/P-1"
    assert Decimal(row["reconciliation"]["difference"]) == Decimal("-0.825")


def _tariff_event(kind: str, offset: int, recorded: datetime, price: str = "0.30") -> Record[Any]:
    meta: dict[str, Any] = {
        "event_id": uuid.uuid4(),
        "aggregate_key": "ZZ/HUB/CDR-T1",
        "occurred_at": recorded,
        "recorded_at": recorded,
        "source": US,
        "correlation_id": "c",
    }
    ref = {"country_code": "ZZ", "party_id": "HUB", "tariff_id": "CDR-T1"}
    event: Any
    if kind == "put":
        body = simple_tariff(energy_price=price, at=recorded.strftime("%Y-%m-%dT%H:%M:%SZ"))
        event = TariffPut(
            **meta,
            payload=TariffPutPayload(**ref, object=_jsonable(body), last_updated=recorded),
        )
    else:
        event = TariffDeleted(**meta, payload=TariffDeletedPayload(**ref, last_updated=recorded))
    return Record("ocpi.tariffs.v1", 3, offset, event)


def _jsonable(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _jsonable(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_jsonable(v) for v in data]
    if isinstance(data, Decimal):
        return int(data) if data % 1 == 0 else float(data)
    return data


async def test_the_tariff_history_answers_as_of_an_instant(
    aio_mongo: AsyncMongoClient[Doc], db: Database[Doc]
) -> None:
    t0 = datetime(2026, 5, 1, tzinfo=UTC)
    batch = [
        _tariff_event("put", 10, t0, "0.30"),
        _tariff_event("put", 11, t0 + timedelta(days=1), "0.40"),
        _tariff_event("delete", 12, t0 + timedelta(days=2)),
    ]
    writer, query = TariffHistoryWriter(db), TariffHistoryQuery(aio_mongo[db.name])
    assert writer.apply(batch) == 3
    # One chunk for the tariff's three versions (docs/adr/0049).
    [chunk] = db["tariff_history"].find({})
    assert [e["offset"] for e in chunk["entries"]] == [10, 11, 12]
    assert writer.apply(batch) == 0  # a re-delivery: the same chunk, refused
    # Re-delivered in other batches: overlapping chunks, each entry read once.
    writer.apply(batch[1:])
    assert db["tariff_history"].count_documents({}) == 2

    async def price_at(at: datetime) -> Any:
        held = await query.as_of("zz", "hub", "cdr-t1", at)
        return None if held is None else held["elements"][0]["price_components"][1]["price"]

    assert await price_at(t0 - timedelta(seconds=1)) is None
    assert await price_at(t0) == 0.3
    assert await price_at(t0 + timedelta(hours=30)) == 0.4
    assert await price_at(t0 + timedelta(days=3)) is None  # deleted by then


def test_the_mysql_table_keeps_decimals_and_is_guarded(engine: Engine) -> None:
    writer, query = CdrRowWriter(engine), CdrRowQuery(engine)
    batch = records()
    assert writer.apply(batch) == 2
    assert writer.apply(batch) == 0
    ours = query.get("ZZ/HUB/OS-1")
    assert ours is not None
    assert ours["total_cost_excl_vat"] == Decimal("3.575")
    assert ours["total_cost_incl_vat"] == Decimal("4.29")
    assert ours["total_energy"] == Decimal("8.25")
    assert (ours["role"], ours["token_uid"], ours["credit"]) == ("issued", "RFID-77", False)
    theirs = query.get("NL/CPO/P-1")
    assert theirs is not None
    assert theirs["expected_excl_vat"] == Decimal("4.4")
    assert theirs["difference_excl_vat"] == Decimal("-0.825")
    assert theirs["discrepancy"] is True


def _location_put(offset: int, recorded: datetime, address: str) -> Record[Any]:
    body = priced_location(tariff_ids=["CDR-T1"])
    body["address"] = address
    body["last_updated"] = recorded.strftime("%Y-%m-%dT%H:%M:%SZ")
    event = LocationObjectPut(
        event_id=uuid.uuid4(),
        aggregate_key="ZZ/HUB/LOC-CDR",
        occurred_at=recorded,
        recorded_at=recorded,
        source=US,
        correlation_id="c",
        payload=LocationObjectPutPayload(
            country_code="ZZ",
            party_id="HUB",
            location_id="LOC-CDR",
            object=body,
            last_updated=recorded,
        ),
    )
    return Record("ocpi.locations.v1", 2, offset, event)


async def test_the_location_history_answers_as_of_an_instant(
    aio_mongo: AsyncMongoClient[Doc], db: Database[Doc]
) -> None:
    t0 = datetime(2026, 5, 1, tzinfo=UTC)
    writer, query = LocationHistoryWriter(db), LocationHistoryQuery(aio_mongo[db.name])
    writer.apply(
        [
            _location_put(4, t0, "Old Street 1"),
            _location_put(5, t0 + timedelta(days=1), "New Street 1"),
        ]
    )

    async def address(at: datetime) -> Any:
        held = await query.as_of("ZZ", "HUB", "LOC-CDR", at)
        return None if held is None else held["address"]

    assert await address(t0 + timedelta(hours=1)) == "Old Street 1"  # renamed later
    assert await address(t0 + timedelta(days=2)) == "New Street 1"
    assert await address(t0 - timedelta(days=1)) == "Old Street 1"  # before our records: the first
    assert await query.as_of("ZZ", "HUB", "NOPE", t0) is None


async def test_the_location_history_keeps_the_event_as_the_log_holds_it(
    aio_mongo: AsyncMongoClient[Doc], db: Database[Doc]
) -> None:
    """Records read from Kafka carry the message's bytes: the history stores
    those, not the decoded event serialised again, and still reads them."""
    t0 = datetime(2026, 4, 1, tzinfo=UTC)  # before the other tests' entries of LOC-CDR
    record = _location_put(7, t0, "Raw Street 1")
    # As another producer might have written it: same event, other spacing.
    raw = json.dumps(json.loads(serialize_event(record.event)), indent=1).encode()
    assert raw != serialize_event(record.event)
    LocationHistoryWriter(db).apply([replace(record, raw=raw)])

    chunks = db["location_history"].find({"key": "ZZ/HUB/LOC-CDR"})
    kept = [entry["event"] for chunk in chunks for entry in chunk["entries"]]
    assert raw.decode() in kept and serialize_event(record.event).decode() not in kept
    held = await LocationHistoryQuery(aio_mongo[db.name]).as_of("ZZ", "HUB", "LOC-CDR", t0)
    assert held is not None and held["address"] == "Raw Street 1"


async def test_a_location_history_held_one_entry_per_document_is_upgraded(
    aio_mongo: AsyncMongoClient[Doc], db: Database[Doc]
) -> None:
    t0 = datetime(2026, 5, 1, tzinfo=UTC)
    db["location_history"].delete_many({})  # the module's database: start afresh
    # As the view held its entries before chunks (docs/adr/0049).
    for offset, at, address in ((4, t0, "Old Street 1"), (5, t0 + timedelta(days=1), "New")):
        record = _location_put(offset, at, address)
        db["location_history"].insert_one(
            {
                "_id": f"ZZ/HUB/LOC-CDR|{record.position_field}|{offset}",
                "key": "ZZ/HUB/LOC-CDR",
                "partition": 2,
                "offset": offset,
                "recorded_at": at,
                "event": serialize_event(record.event).decode(),
            }
        )
    db["location_history"].create_index([("key", 1), ("recorded_at", 1)])  # its index then
    writer, query = LocationHistoryWriter(db), LocationHistoryQuery(aio_mongo[db.name])
    writer.prepare()
    assert db["location_history"].count_documents({"entries": {"$exists": True}}) == 2
    held = await query.as_of("ZZ", "HUB", "LOC-CDR", t0 + timedelta(hours=1))
    assert held is not None and held["address"] == "Old Street 1"
    # The next batch's chunk sits beside the upgraded ones.
    writer.apply([_location_put(6, t0 + timedelta(days=2), "Third Street 3")])
    held = await query.as_of("ZZ", "HUB", "LOC-CDR", t0 + timedelta(days=3))
    assert held is not None and held["address"] == "Third Street 3"
