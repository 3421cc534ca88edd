"""What the log holds and what the views show, for the tests that hold the
platform to its acknowledgements (tests/e2e/test_scale_out.py, tests/chaos).

EVSEs are named by their key as the events and views key them:
``COUNTRY_CODE/PARTY_ID/LOCATION_ID/EVSE_UID``, upper-cased.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from pymongo import MongoClient
from sqlalchemy import bindparam, create_engine, text

from schemas.events import parse_event
from schemas.ocpi.common import format_ocpi_datetime
from schemas.topics import TopicSpec


async def read_topic(bootstrap: str, topic: str, spec: TopicSpec) -> list[Any]:
    """Every event on ``topic`` (of the catalogue's ``spec``), up to its
    current end, in partition order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    found: list[Any] = []
    try:
        tps = [TopicPartition(topic, p) for p in range(spec.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)

        async def behind() -> bool:
            return any([await consumer.position(tp) < end[tp] for tp in tps])

        while await behind():
            for messages in (await consumer.getmany(timeout_ms=1000)).values():
                found.extend(parse_event(m.value) for m in messages if m.value is not None)
    finally:
        await consumer.stop()
    return found


@dataclass(frozen=True)
class Shown:
    """One EVSE as a view shows it."""

    status: str
    last_updated: str  # as format_ocpi_datetime writes it


@dataclass
class Views:
    mongo: dict[str, Shown]
    mysql: dict[str, Shown]
    # EVSE keys a view holds more than once (a location listing an EVSE
    # twice; MySQL's primary key forbids it there).
    doubled: list[str]


def evses_shown(
    mongo_url: str, mongo_db: str, mysql_url: str, location_keys: Iterable[str]
) -> Views:
    """The EVSEs of these locations (``CC/PID/LOC`` keys) in the MongoDB
    locations view and the MySQL ``evses`` table."""
    keys = sorted({k.upper() for k in location_keys})
    in_mongo: dict[str, Shown] = {}
    doubled: list[str] = []
    client: MongoClient[dict[str, Any]]
    with MongoClient(mongo_url) as client:
        docs: list[dict[str, Any]] = list(
            client[mongo_db]["locations"].find({"_id": {"$in": keys}})
        )
        for doc in docs:
            for e in (doc.get("location") or {}).get("evses") or ():
                key = f"{doc['_id']}/{e['uid']}".upper()
                if key in in_mongo:
                    doubled.append(key)
                in_mongo[key] = Shown(str(e.get("status")), str(e.get("last_updated")))
    engine = create_engine(mysql_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT evse_key, status, last_updated FROM evses WHERE location_key IN :keys"
                ).bindparams(bindparam("keys", expanding=True)),
                {"keys": keys},
            ).all()
    finally:
        engine.dispose()
    in_mysql = {
        str(key).upper(): Shown(str(status), format_ocpi_datetime(at.replace(tzinfo=UTC)))
        for key, status, at in rows
    }
    return Views(in_mongo, in_mysql, doubled)
