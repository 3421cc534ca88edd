"""The session views against the real services: the MongoDB view (fold,
guard, keyset pages of the Sender list) and the MySQL ``sessions`` table
(migration, DECIMAL columns, guard)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from pymongo import AsyncMongoClient, MongoClient
from pymongo.database import Database
from sqlalchemy import Engine, select

from ocpi_hub.bootstrap import mysql_engine
from projections.mongo.folding import Doc
from projections.mongo.sessions import COLLECTION, SessionViewQuery, SessionViewWriter
from projections.mysql.migrate import migrate
from projections.mysql.sessions import SessionRowQuery, SessionRowWriter, sessions
from projections.position import Record
from schemas.ocpi.common import format_ocpi_datetime
from tests.ocpi_sessions import period, session
from tests.services import Namespace
from tests.unit.session_factories import T0, patch, put


def at(minutes: float) -> str:
    return format_ocpi_datetime(T0 + timedelta(minutes=minutes))


@pytest.fixture(scope="module")
def db(namespace: Namespace) -> Iterator[Database[Doc]]:
    with MongoClient(namespace.settings.mongo_url) as client:
        database: Database[Doc] = client[f"{namespace.name}_sessview"]
        SessionViewWriter(database).prepare()
        yield database
        client.drop_database(database.name)


@pytest.fixture(scope="module")
def engine(namespace: Namespace) -> Iterator[Engine]:
    built = mysql_engine(namespace.settings)
    migrate(built)
    migrate(built)  # idempotent
    yield built
    built.dispose()


def batch() -> list[Record[object]]:
    return [
        put(session(kwh=1.5, charging_periods=[period(at(0), 1.5)]), offset=1),
        patch(
            {"kwh": 4.25, "charging_periods": [period(at(15), 2.75)], "last_updated": at(20)},
            offset=2,
        ),
        put(session("S2", at=at(5), status="COMPLETED", end_date_time=at(30)), offset=3),
        patch(
            {
                "status": "COMPLETED",
                "end_date_time": at(40),
                "total_cost": {"excl_vat": 2.1, "incl_vat": 2.541},
                "last_updated": at(40),
            },
            offset=4,
        ),
    ]


async def test_mongo_view_folds_once_and_pages_by_last_updated(
    aio_mongo: AsyncMongoClient[Doc], db: Database[Doc]
) -> None:
    db[COLLECTION].delete_many({})
    writer = SessionViewWriter(db)
    records = batch()
    assert writer.apply(records) == 2
    before = list(db[COLLECTION].find().sort("_id"))
    assert writer.apply(records) == 0  # re-delivery changes nothing
    assert list(db[COLLECTION].find().sort("_id")) == before
    query = SessionViewQuery(aio_mongo[db.name])
    s1, _ = await query.read("NL/ABC/S1")
    assert s1 is not None
    assert s1["kwh"] == 4.25 and s1["status"] == "COMPLETED"
    assert [p["start_date_time"] for p in s1["charging_periods"]] == [at(0), at(15)]
    page = await query.page(country_code="nl", party_id="abc", date_from=T0, limit=1)
    assert page.total == 2
    assert [s["id"] for s in page.items] == ["S2"]  # last_updated 09:05 before 09:40
    second = await query.page(
        country_code="NL", party_id="ABC", date_from=T0, after=page.last, limit=1
    )
    assert [s["id"] for s in second.items] == ["S1"]
    window = await query.page(
        country_code="NL", party_id="ABC", date_from=T0 + timedelta(minutes=6), limit=10
    )
    assert [s["id"] for s in window.items] == ["S1"]
    assert (await query.page(country_code="DE", party_id="ABC", date_from=T0, limit=10)).total == 0


def test_mysql_table_one_row_per_session_with_decimals(engine: Engine) -> None:
    writer = SessionRowWriter(engine)
    writer.wipe()
    records = batch()
    assert writer.apply(records) == 2
    assert writer.apply(records) == 0
    assert writer.apply(records[:2]) == 0
    row = SessionRowQuery(engine).get("NL/ABC/S1")
    assert row is not None
    assert row["status"] == "COMPLETED"
    assert row["kwh"] == Decimal("4.25")
    assert row["total_cost_excl_vat"] == Decimal("2.1")
    assert row["total_cost_incl_vat"] == Decimal("2.541")
    assert row["token_uid"] == "RFID-0042"
    assert (row["location_id"], row["evse_uid"], row["connector_id"]) == ("LOC1", "EVSE1", "1")
    assert row["end_date_time"] == (T0 + timedelta(minutes=40)).replace(tzinfo=None)
    with engine.connect() as conn:
        keys = [r.session_key for r in conn.execute(select(sessions.c.session_key))]
    assert sorted(keys) == ["NL/ABC/S1", "NL/ABC/S2"]
    # Later records on top of a stored row continue the fold.
    more = patch({"kwh": 5, "last_updated": at(50)}, offset=5)
    assert writer.apply([more]) == 1
    row = SessionRowQuery(engine).get("NL/ABC/S1")
    assert row is not None and row["kwh"] == Decimal(5)
