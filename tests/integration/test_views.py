"""Projection writers against the real document store and MariaDB."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pymongo import MongoClient
from sqlalchemy import Engine, select

from ocpi_hub.bootstrap import Views, mongo_client, mysql_engine, views
from ocpi_hub.compare import compare_views
from projections.mongo.locations import COLLECTION, LocationViewQuery, LocationViewWriter
from projections.mysql.chargers import ChargerQuery, ChargerWriter
from projections.mysql.migrate import migrate
from projections.mysql.models import chargers
from schemas.ocpi.locations import EvseStatus as S
from tests.services import Namespace
from tests.unit.factories import resolved


@pytest.fixture(scope="module")
def live(namespace: Namespace) -> Iterator[Views]:
    client = mongo_client(namespace.settings)
    engine = mysql_engine(namespace.settings)
    v = views(client, namespace.name, engine)
    v.prepare()
    v.prepare()  # migrations and indexes are idempotent
    yield v
    client.close()
    engine.dispose()


@pytest.fixture(autouse=True)
def empty(live: Views) -> None:
    live.wipe()


def test_mongo_view_is_written_once_and_redelivery_changes_nothing(live: Views) -> None:
    writer = LocationViewWriter(live.mongo)
    batch = [
        resolved(S.AVAILABLE, evse_uid="E1", offset=10),
        resolved(S.CHARGING, evse_uid="E2", offset=11),
        resolved(S.BLOCKED, evse_uid="E1", location_id="LOC2", offset=12),
    ]
    assert writer.apply(batch) == 2
    before = list(live.mongo[COLLECTION].find().sort("_id"))
    assert writer.apply(batch) == 0  # at-least-once: same batch again
    assert writer.apply(batch[:1]) == 0
    assert list(live.mongo[COLLECTION].find().sort("_id")) == before
    location = LocationViewQuery(live.mongo).get("nl", "abc", "loc1")  # CiString lookups
    assert location is not None
    assert [(e["uid"], e["status"]) for e in location["evses"]] == [
        ("E1", "AVAILABLE"),
        ("E2", "CHARGING"),
    ]
    assert "_positions" not in location


def test_mongo_writer_rereads_when_the_document_moved_under_it(live: Views) -> None:
    writer = LocationViewWriter(live.mongo)
    writer.apply([resolved(S.AVAILABLE, evse_uid="E1", offset=1)])
    # Another writer (a zombie consumer, an in-place replay) got further meanwhile.
    other = LocationViewWriter(live.mongo)
    other.apply([resolved(S.CHARGING, evse_uid="E1", offset=5)])
    writer.apply([resolved(S.BLOCKED, evse_uid="E1", offset=3)])  # older than 5: no effect
    doc = live.mongo[COLLECTION].find_one({"_id": "NL/ABC/LOC1"})
    assert doc is not None
    assert doc["evses"][0]["status"] == "CHARGING"
    assert doc["_positions"] == {"ocpi_evse-status_v1@0": 5}


def test_a_stale_document_write_is_detected_and_retried(live: Views) -> None:
    """Read, then someone else writes, then our guarded replace must not win."""
    coll = live.mongo[COLLECTION]
    writer = LocationViewWriter(live.mongo)
    writer.apply([resolved(S.AVAILABLE, evse_uid="E1", offset=1)])
    original_find = coll.find
    calls = {"n": 0}

    def find_then_interfere(*args, **kwargs):  # type: ignore[no-untyped-def]
        result = list(original_find(*args, **kwargs))
        calls["n"] += 1
        if calls["n"] == 1:  # between our read and our write
            LocationViewWriter(live.mongo).apply([resolved(S.CHARGING, evse_uid="E2", offset=2)])
        return result

    writer._coll.find = find_then_interfere  # type: ignore[method-assign]
    writer.apply([resolved(S.BLOCKED, evse_uid="E1", offset=3)])
    doc = coll.find_one({"_id": "NL/ABC/LOC1"})
    assert doc is not None
    assert calls["n"] == 2  # the conflict made the writer read again
    assert {e["uid"]: e["status"] for e in doc["evses"]} == {"E1": "BLOCKED", "E2": "CHARGING"}


def test_mysql_rows_are_guarded_by_offset(live: Views) -> None:
    engine: Engine = live.mysql
    writer = ChargerWriter(engine)
    writer.apply([resolved(S.CHARGING, evse_uid="E1", offset=20)])
    writer.apply([resolved(S.AVAILABLE, evse_uid="E1", offset=19)])  # older: ignored
    writer.apply([resolved(S.CHARGING, evse_uid="E1", offset=20)])  # redelivered: same
    [row] = ChargerQuery(engine).list()
    assert (row["status"], row["status_offset"]) == ("CHARGING", 20)
    writer.apply([resolved(S.OUTOFORDER, evse_uid="E1", offset=21)])
    assert ChargerQuery(engine).list(status="OUTOFORDER")[0]["evse_uid"] == "E1"
    assert ChargerQuery(engine).list(status="CHARGING") == []


def test_charger_query_filters_and_pages(live: Views) -> None:
    writer = ChargerWriter(live.mysql)
    writer.apply(
        [
            resolved(S.CHARGING, evse_uid=f"E{i}", location_id=f"L{i % 2}", offset=i)
            for i in range(5)
        ]
    )
    query = ChargerQuery(live.mysql)
    assert [r["evse_uid"] for r in query.list(location_id="L0")] == ["E0", "E2", "E4"]
    page1 = query.list(limit=2)
    page2 = query.list(limit=2, after=page1[-1]["evse_key"])
    assert len(page1) == 2 and len(page2) == 2
    assert {r["evse_key"] for r in page1}.isdisjoint(r["evse_key"] for r in page2)


def test_compare_finds_a_difference(live: Views, namespace: Namespace) -> None:
    LocationViewWriter(live.mongo).apply([resolved(S.AVAILABLE, offset=1)])
    ChargerWriter(live.mysql).apply([resolved(S.AVAILABLE, offset=1)])
    assert compare_views(live, live) == []
    with MongoClient(namespace.settings.mongo_url) as client:
        empty_db = client[f"{namespace.name}_empty"]
        other = Views(mongo=empty_db, mysql=live.mysql)
        assert compare_views(live, other) == ["mongo.locations:NL/ABC/LOC1"]
        client.drop_database(empty_db.name)


def test_migrations_reach_head_twice(live: Views) -> None:
    migrate(live.mysql)
    with live.mysql.connect() as conn:
        assert conn.execute(select(chargers)).all() == []
