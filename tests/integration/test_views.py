"""Projection writers against the real document store and MariaDB."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from pymongo import AsyncMongoClient, MongoClient
from sqlalchemy import select

from ocpi_hub.bootstrap import (
    Views,
    create_mysql_database,
    drop_mysql_database,
    mongo_client,
    mysql_engine,
    views,
)
from ocpi_hub.compare import compare_views
from ocpi_hub.settings import Settings
from projections.mongo.folding import Doc
from projections.mongo.locations import COLLECTION, LocationViewQuery, LocationViewWriter
from projections.mysql.migrate import migrate
from projections.mysql.models import evses
from projections.mysql.sites import HierarchyWriter
from schemas.ocpi.locations import EvseStatus as S
from tests.integration.test_counts import batches, location_log
from tests.ocpi_objects import evse, location
from tests.services import Namespace
from tests.unit.factories import patch, put, resolved

LATER = "2026-01-01T12:10:00Z"


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


async def test_a_stale_document_write_is_detected_and_retried(
    aio_mongo: AsyncMongoClient[Doc], live: Views
) -> None:
    """Read, then someone else writes, then our guarded replace must not win."""
    coll = live.mongo[COLLECTION]
    # No cache: the read this test interferes with must happen.
    writer = LocationViewWriter(live.mongo, cache_size=0)
    writer.apply([put(location(evses=[evse("E1"), evse("E2")]), offset=1)])
    original_find = coll.find
    calls = {"n": 0}

    def find_then_interfere(*args, **kwargs):  # type: ignore[no-untyped-def]
        result = list(original_find(*args, **kwargs))
        calls["n"] += 1
        if calls["n"] == 1:  # between our read and our write
            LocationViewWriter(live.mongo).apply([resolved(S.CHARGING, evse_uid="E2", offset=2)])
        return result

    writer._coll.find = find_then_interfere  # type: ignore[method-assign]
    writer.apply([patch({"status": "BLOCKED", "last_updated": LATER}, evse_uid="E1", offset=3)])
    shown = await LocationViewQuery(aio_mongo[live.mongo.name]).get("NL", "ABC", "LOC1")
    assert shown is not None
    assert calls["n"] == 2  # the conflict made the writer read again
    assert {e["uid"]: e["status"] for e in shown["evses"]} == {"E1": "BLOCKED", "E2": "CHARGING"}


async def test_a_document_written_by_another_writer_since_we_cached_it_is_read_again(
    aio_mongo: AsyncMongoClient[Doc],
    live: Views,
) -> None:
    """The cache stands in for the read only while nobody else wrote."""
    coll = live.mongo[COLLECTION]
    writer = LocationViewWriter(live.mongo)
    writer.apply([put(location(evses=[evse("E1"), evse("E2")]), offset=1)])
    reads = {"n": 0}
    original_find = coll.find

    def counting_find(*args, **kwargs):  # type: ignore[no-untyped-def]
        reads["n"] += 1
        return original_find(*args, **kwargs)

    writer._coll.find = counting_find  # type: ignore[method-assign]
    writer.apply([patch({"status": "CHARGING", "last_updated": LATER}, evse_uid="E1", offset=2)])
    assert reads["n"] == 0  # served from what it wrote
    LocationViewWriter(live.mongo).apply([resolved(S.RESERVED, evse_uid="E2", offset=3)])
    writer.apply(
        [
            patch(
                {"status": "BLOCKED", "last_updated": "2026-01-01T12:20:00Z"},
                evse_uid="E1",
                offset=4,
            )
        ]
    )
    assert reads["n"] == 1  # its cached version was stale: the guard missed, it read again
    shown = await LocationViewQuery(aio_mongo[live.mongo.name]).get("NL", "ABC", "LOC1")
    assert shown is not None
    assert {e["uid"]: e["status"] for e in shown["evses"]} == {"E1": "BLOCKED", "E2": "RESERVED"}


def test_compare_finds_a_difference(live: Views, namespace: Namespace) -> None:
    records = [put(location()), resolved(S.AVAILABLE, evse_uid="EVSE1", offset=1)]
    LocationViewWriter(live.mongo).apply(records)
    HierarchyWriter(live.mysql).apply(records)
    assert compare_views(live, live) == []
    with MongoClient(namespace.settings.mongo_url) as client:
        empty_db = client[f"{namespace.name}_empty"]
        other = Views(mongo=empty_db, mysql=live.mysql)
        assert compare_views(live, other) == [
            "mongo.locations:NL/ABC/LOC1",
            "mongo.counts:locations|NL/ABC|ocpi_locations_v1@0",  # the location counted
        ]
        client.drop_database(empty_db.name)


def test_migrations_reach_head_twice(live: Views) -> None:
    migrate(live.mysql)
    with live.mysql.connect() as conn:
        assert conn.execute(select(evses)).all() == []


def test_views_sharing_folds_equal_a_replay_split_otherwise(
    live: Views, namespace: Namespace, services: Settings
) -> None:
    """The MongoDB and MySQL location views fold each location once per batch
    between them (projections/location_folds.py); batched live one way and
    replayed another way, every view comes out the same."""
    rng = random.Random(21)
    log = location_log(rng, 250)
    for batch in batches(rng, log.records):
        for writer in live.writers:
            writer.apply(batch)
    name = f"{namespace.name}_rp"
    create_mysql_database(services, name)
    client = mongo_client(namespace.settings)
    engine = mysql_engine(namespace.settings, name)
    try:
        replayed = views(client, name, engine, document_cache=100)
        replayed.prepare()
        for batch in batches(random.Random(5), log.records):
            for writer in replayed.writers:
                writer.apply(batch)
        assert compare_views(live, replayed) == []
        assert live.mongo[COLLECTION].count_documents({"location": {"$ne": None}}) > 0
    finally:
        engine.dispose()
        client.drop_database(name)
        client.close()
        drop_mysql_database(services, name)
