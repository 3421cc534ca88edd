"""The MongoDB tariff view against the real MongoDB-wire server: the fold,
its position guard under re-delivery, the tombstone, keyset pages; and a
replay from the real Kafka topic rebuilding the same view."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pymongo import AsyncMongoClient, MongoClient
from pymongo.database import Database

from ocpi_hub.bootstrap import async_mongo_client, mysql_engine, views
from ocpi_hub.settings import Settings
from producers.log import KafkaEventLog, ensure_topics
from producers.tariffs import Origin, plan_delete, plan_put
from projections.mongo.folding import Doc
from projections.mongo.tariffs import COLLECTION, TariffViewQuery, TariffViewWriter
from projections.position import Record
from projections.runner import replay
from schemas.events import Party, TariffDeleted, TariffPut
from schemas.events.tariffs import TariffRef
from schemas.ocpi.common import format_ocpi_datetime, sort_stamp
from schemas.ocpi.tariffs import loads_exact
from schemas.topics import TARIFFS
from tests.conftest import fresh_namespace
from tests.services import Namespace
from tests.tariff_objects import tariff, tariff_json

T0 = datetime(2026, 2, 1, 10, 0, tzinfo=UTC)
ORIGIN = Origin(Party(country_code="NL", party_id="ABC"), "corr")


@pytest.fixture(scope="module")
def db(namespace: Namespace) -> Iterator[Database[Doc]]:
    with MongoClient(namespace.settings.mongo_url) as client:
        database: Database[Doc] = client[f"{namespace.name}_tariffview"]
        TariffViewWriter(database).prepare()
        yield database
        client.drop_database(database.name)


@pytest.fixture(autouse=True)
def empty(db: Database[Doc]) -> None:
    TariffViewWriter(db).wipe()  # the documents and their counts


def at(minutes: float) -> str:
    return format_ocpi_datetime(T0 + timedelta(minutes=minutes))


def ref(tariff_id: str, party_id: str = "ABC") -> TariffRef:
    return TariffRef(country_code="NL", party_id=party_id, tariff_id=tariff_id)


def put_event(tariff_id: str, minutes: float = 0, party_id: str = "ABC") -> TariffPut:
    body = tariff(tariff_id, at=at(minutes), party_id=party_id)
    event = plan_put(ref(tariff_id, party_id), body, None, ORIGIN, T0).event
    assert isinstance(event, TariffPut)
    return event


def delete_event(tariff_id: str, minutes: float) -> TariffDeleted:
    now = T0 + timedelta(minutes=minutes)
    event = plan_delete(ref(tariff_id), {"held": True}, ORIGIN, now).event
    assert isinstance(event, TariffDeleted)
    return event


def rec(event: Any, offset: int, partition: int = 0) -> Record[object]:
    return Record(TARIFFS.name, partition, offset, event)


async def test_written_once_and_redelivery_changes_nothing(
    aio_mongo: AsyncMongoClient[Doc], db: Database[Doc]
) -> None:
    writer = TariffViewWriter(db)
    batch = [rec(put_event("T1"), 10), rec(put_event("T2"), 11), rec(put_event("T1", 5), 12)]
    assert writer.apply(batch) == 2
    before = list(db[COLLECTION].find().sort("_id"))
    assert writer.apply(batch) == 0  # at-least-once: the same batch again
    assert writer.apply(batch[:1]) == 0
    assert list(db[COLLECTION].find().sort("_id")) == before
    query = TariffViewQuery(aio_mongo[db.name])
    t1 = await query.get("nl", "abc", "t1")  # CiString lookup
    assert t1 is not None and t1["last_updated"] == at(5)
    assert "_positions" not in t1


async def test_numbers_come_back_exact(aio_mongo: AsyncMongoClient[Doc], db: Database[Doc]) -> None:
    TariffViewWriter(db).apply([rec(put_event("T1"), 1)])
    served = await TariffViewQuery(aio_mongo[db.name]).get("NL", "ABC", "T1")
    assert served is not None
    assert loads_exact(json.dumps(served)) == loads_exact(tariff_json("T1"))
    assert loads_exact(json.dumps(served))["elements"][2]["price_components"][0][
        "price"
    ] == Decimal("0.123456789012345")


async def test_stale_put_and_tombstone(aio_mongo: AsyncMongoClient[Doc], db: Database[Doc]) -> None:
    writer = TariffViewWriter(db)
    query = TariffViewQuery(aio_mongo[db.name])
    writer.apply([rec(put_event("T1", 10), 1), rec(put_event("T1", 5), 2)])
    assert (await query.get("NL", "ABC", "T1") or {})["last_updated"] == at(10)  # older not applied
    writer.apply([rec(delete_event("T1", 20), 3)])
    assert await query.get("NL", "ABC", "T1") is None
    writer.apply([rec(put_event("T1", 10), 4)])  # a late copy of the old version
    assert await query.get("NL", "ABC", "T1") is None
    writer.apply([rec(put_event("T1", 30), 5)])
    assert (await query.get("NL", "ABC", "T1") or {})["last_updated"] == at(30)
    assert await query.positions("NL/ABC/T1") == {"ocpi_tariffs_v1@0": 5}


async def test_pages_by_last_updated_then_id_with_keyset(
    aio_mongo: AsyncMongoClient[Doc], db: Database[Doc]
) -> None:
    writer = TariffViewWriter(db)
    events = [put_event(f"T{i}", minutes=i // 2) for i in range(7)]  # ties in pairs
    events.append(put_event("OTHER", party_id="XYZ"))
    writer.apply([rec(e, i) for i, e in enumerate(events)])
    query = TariffViewQuery(aio_mongo[db.name])
    first = await query.page(country_code="NL", party_id="ABC", limit=3)
    assert first.total == 7
    seen = [t["id"] for t in first.items]
    page = first
    while page.last is not None and len(seen) < page.total:
        page = await query.page(country_code="nl", party_id="abc", after=page.last, limit=3)
        seen += [t["id"] for t in page.items]
    assert seen == [f"T{i}" for i in range(7)]
    window = await query.page(
        country_code="NL",
        party_id="ABC",
        date_from=T0 + timedelta(minutes=1),
        date_to=T0 + timedelta(minutes=3),
        limit=10,
    )
    assert [t["id"] for t in window.items] == ["T2", "T3", "T4", "T5"]
    assert window.last == (sort_stamp(at(2)), "NL/ABC/T5")
    # A deleted tariff leaves the list.
    writer.apply([rec(delete_event("T0", 60), 99)])
    assert (await query.page(country_code="NL", party_id="ABC", limit=10)).total == 6


def test_the_view_is_among_the_writers_replay_rebuilds(services: Settings) -> None:
    with fresh_namespace(services) as namespace:
        asyncio.run(_append_and_replay(namespace))


async def _append_and_replay(namespace: Namespace) -> None:
    s = namespace.settings
    await ensure_topics(s.kafka_bootstrap, s.topic_prefix, 1)
    log = KafkaEventLog(s.kafka_bootstrap, s.topic_prefix)
    await log.start()
    try:
        positions = await log.append([put_event("T1"), put_event("T2"), delete_event("T2", 9)])
    finally:
        await log.stop()
    assert {p.topic for p in positions} == {TARIFFS.name}
    engine = mysql_engine(s)  # not connected: only the MongoDB writer runs here
    with MongoClient(s.mongo_url, tz_aware=True) as client:
        live = views(client, f"{namespace.name}_{uuid.uuid4().hex[:6]}", engine)
        writers = [w for w in live.writers if isinstance(w, TariffViewWriter)]
        assert len(writers) == 1
        writers[0].prepare()
        count = await asyncio.wait_for(
            replay(s.kafka_bootstrap, s.topic_prefix, writers, batch_size=10), timeout=60
        )
        assert count == 3
        aio = async_mongo_client(s)  # this test runs its own loop: its own client
        try:
            query = TariffViewQuery(aio[live.mongo.name])
            served = await query.get("NL", "ABC", "T1")
            assert served is not None
            assert loads_exact(json.dumps(served)) == loads_exact(tariff_json("T1"))
            assert await query.get("NL", "ABC", "T2") is None
        finally:
            await aio.close()
        client.drop_database(live.mongo.name)
    engine.dispose()
