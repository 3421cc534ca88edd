"""Events a view cannot apply are quarantined, not fatal (docs/adr/0028).

Poison events are produced straight onto the topics (as a producer without
the API's checks could), against the real Kafka, document store and MariaDB:
the live projections keep running and apply everything else, the dead
letters are published and folded into their view, a replay does the same
and finishes, and a retry after a fix resolves them. A document store that
is away (a proxy we close and open again) quarantines nothing.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pymongo import AsyncMongoClient, MongoClient
from sqlalchemy import create_engine, make_url, text

from api.app import create_app
from ocpi_hub.bootstrap import Views, dead_letter_log, mysql_engine, views
from ocpi_hub.retrying import keep_running
from ocpi_hub.settings import Settings
from producers.log import ensure_topics
from projections.mongo.dead_letters import QUARANTINED, RESOLVED, DeadLetterQuery
from projections.mongo.locations import LocationViewQuery
from projections.mongo.tariffs import TariffViewQuery
from projections.mysql.models import connectors
from projections.retry import RetryResult
from projections.runner import run_live
from schemas.events import EventMeta, serialize_event
from schemas.topics import DEAD_LETTERS, LOCATIONS, TARIFFS
from tests.conftest import fresh_namespace
from tests.integration.test_tariff_view import put_event as tariff_put
from tests.ocpi_objects import connector, evse, location
from tests.proxy import Gate
from tests.services import Namespace, env_of
from tests.unit.factories import patch, put

HUGE = 10**40  # beyond 64 bits: MongoDB cannot hold it, nor an INT column


def _huge_tariff(tariff_id: str) -> bytes:
    """A TariffPut whose first price is a 40-digit integer."""
    raw = json.loads(serialize_event(tariff_put(tariff_id)))
    raw["payload"]["object"]["elements"][0]["price_components"][0]["price"] = HUGE
    return json.dumps(raw).encode()


async def _produce(s: Settings, topic: str, items: list[tuple[str, bytes, str | None]]) -> None:
    """Raw records (key, value, event_type header) in order, acks=all."""
    producer = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for key, value, event_type in items:
            headers = [("event_type", event_type.encode())] if event_type else []
            await producer.send_and_wait(
                s.topic(topic), value=value, key=key.encode(), headers=headers
            )
    finally:
        await producer.stop()


OCPI_HUB = str(Path(sys.executable).with_name("ocpi-hub"))


async def _cli(s: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """The `ocpi-hub` command, as an operator runs it, in the namespace."""
    return await asyncio.to_thread(
        subprocess.run,
        [OCPI_HUB, *args],
        env={**os.environ, **env_of(s), "OCPI_HUB_LOG_FORMAT": "json"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _event(record: Any) -> tuple[str, bytes, str]:
    event: EventMeta = record.event
    return event.aggregate_key, serialize_event(event), getattr(event, "event_type")  # noqa: B009


async def _all_served(locations: LocationViewQuery, ids: list[str]) -> bool:
    return all([await locations.get("NL", "ABC", i) for i in ids])


async def _until(check: Callable[[], Any], within: float = 120, what: str = "") -> Any:
    deadline = time.monotonic() + within
    while True:
        result = await asyncio.to_thread(check)
        if inspect.isawaitable(result):  # a view query (async): awaited on this loop
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.3)


@asynccontextmanager
async def _projections(s: Settings, live: Views) -> AsyncIterator[asyncio.Task[None]]:
    """The live runner of `ocpi-hub projections`, publishing dead letters,
    started again as the process does when it ends (a batch a store was away
    for ends it uncommitted, docs/adr/0032)."""
    stop = asyncio.Event()
    async with dead_letter_log(s, publish=True) as dead_letters:
        task = asyncio.create_task(
            keep_running(
                lambda: run_live(
                    s.kafka_bootstrap,
                    s.topic_prefix,
                    live.writers,
                    batch_size=200,
                    poll_ms=50,
                    stop=stop,
                    dead_letters=dead_letters,
                    retry_initial_s=0.2,
                    retry_max_s=1.0,
                    settle=live.settle,
                ),
                stop,
                name="projections",
                initial_s=0.2,
                max_s=1.0,
            )
        )
        try:
            yield task
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)


# --- poison events: live, replay, retry -------------------------------------------------

LOC = "NL/ABC/LOC1"
LOC_POISONED_ALONE = "NL/ABC/LOC3"


async def _readyz(s: Settings) -> dict[str, Any]:
    """What the API's /readyz answers for this namespace (the app in-process)."""
    app = create_app(s)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            answer = await http.get("/readyz")
    body: dict[str, Any] = answer.json()
    return body


def test_poison_events_are_quarantined_and_everything_else_applied(services: Settings) -> None:
    with fresh_namespace(services) as namespace:
        asyncio.run(_poison(namespace))


async def _poison(namespace: Namespace) -> None:
    s = namespace.settings
    await ensure_topics(s.kafka_bootstrap, s.topic_prefix, 1)
    client: MongoClient[dict[str, Any]] = MongoClient(s.mongo_url, tz_aware=True)
    engine = mysql_engine(s)
    reads: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(s.mongo_url, tz_aware=True)
    try:
        live = views(client, s.mongo_db, engine)
        await asyncio.to_thread(live.prepare)
        dead = DeadLetterQuery(live.mongo)
        locations = LocationViewQuery(reads[s.mongo_db])
        tariffs = TariffViewQuery(reads[s.mongo_db])

        async with _projections(s, live) as running:
            await _produce(
                s,
                LOCATIONS.name,
                [
                    _event(put(location(), offset=0)),
                    # The same location, one connector's voltage 40 digits long.
                    _event(
                        put(
                            location(evses=[evse(connectors=[connector(max_voltage=HUGE)])]),
                            offset=1,
                        )
                    ),
                    (LOC, b"{not json", None),
                    _event(
                        patch(
                            {"status": "CHARGING", "last_updated": "2026-01-01T12:05:00Z"},
                            evse_uid="EVSE1",
                        )
                    ),
                    _event(put(location("LOC2"), location_id="LOC2")),
                    _event(
                        put(
                            location(
                                "LOC3", evses=[evse(connectors=[connector(max_voltage=HUGE)])]
                            ),
                            location_id="LOC3",
                        )
                    ),
                ],
            )
            await _produce(
                s,
                TARIFFS.name,
                [
                    ("NL/ABC/T1", _huge_tariff("T1"), "TariffPut"),
                    _event_of(tariff_put("T2")),
                ],
            )

            # Everything good is applied, after the poison, in order.
            async def location_applied() -> bool:
                served = await locations.get("NL", "ABC", "LOC1")
                return served is not None and served["evses"][0]["status"] == "CHARGING"

            await _until(location_applied, what="LOC1 PUT then PATCH around the poison")
            assert await locations.get("NL", "ABC", "LOC2") is not None
            assert await locations.get("NL", "ABC", "LOC3") is None
            await _until(lambda: tariffs.get("NL", "ABC", "T2"), what="T2")
            assert await tariffs.get("NL", "ABC", "T1") is None
            # The MySQL hierarchy too: LOC1 and LOC2 there, LOC3 not.
            with engine.connect() as conn:
                held = {r.connector_key: r.max_voltage for r in conn.execute(connectors.select())}
            assert held == {
                "NL/ABC/LOC1/EVSE1/1": 230,
                "NL/ABC/LOC2/EVSE1/1": 230,
            }

            expected = {
                ("mongo.locations", LOCATIONS.name): 2,  # LOC1's and LOC3's huge PUTs
                ("mysql.hierarchy", LOCATIONS.name): 2,
                ("decode", LOCATIONS.name): 1,
                ("mongo.tariffs", TARIFFS.name): 1,
            }

            def all_listed() -> list[dict[str, Any]] | None:
                letters = dead.list()
                return letters if len(letters) == sum(expected.values()) else None

            letters = await _until(all_listed, what="the dead letters in their view")
            got: dict[tuple[str, str], int] = {}
            for d in letters:
                got[(d["view"], d["source"]["topic"])] = (
                    got.get((d["view"], d["source"]["topic"]), 0) + 1
                )
                assert d["status"] == QUARANTINED
                assert d["attempts"] == 1
            assert got == expected
            by_view = {d["view"]: d for d in letters}
            assert by_view["mongo.locations"]["error_type"] == "OverflowError"
            assert by_view["mysql.hierarchy"]["error_type"] == "DataError(DataError)"
            assert "max_voltage" in by_view["mysql.hierarchy"]["error_message"]
            decode_letter = by_view["decode"]
            assert decode_letter["value"] == "{not json"
            assert decode_letter["key"] == LOC
            assert dead.unresolved_per_view() == {
                "decode": 1,
                "mongo.locations": 2,
                "mongo.tariffs": 1,
                "mysql.hierarchy": 2,
            }

            # Still running: later events of the same and other keys apply.
            await _produce(
                s,
                LOCATIONS.name,
                [
                    _event(
                        patch(
                            {"status": "AVAILABLE", "last_updated": "2026-01-01T12:06:00Z"},
                            evse_uid="EVSE1",
                        )
                    ),
                    _event(put(location("LOC4"), location_id="LOC4")),
                ],
            )
            await _until(lambda: locations.get("NL", "ABC", "LOC4"), what="LOC4")
            served = await locations.get("NL", "ABC", "LOC1")
            assert served is not None and served["evses"][0]["status"] == "AVAILABLE"
            assert not running.done()
            assert len(dead.list()) == sum(expected.values())  # nothing quarantined twice

        # --- replay in place (the command): the same dead letters, and it finishes.
        before = {d["_id"]: d["error_type"] for d in dead.list()}
        replayed = await _cli(s, "replay")
        assert replayed.returncode == 0, replayed.stderr
        result = json.loads(replayed.stdout.strip().splitlines()[-1])
        assert result["quarantined"] == sum(expected.values())
        assert result["events"] > 0
        assert {d["_id"]: d["error_type"] for d in dead.list()} == before
        assert all(d["attempts"] == 2 for d in dead.list())  # quarantined again, same letters
        assert dead.unresolved_per_view()["mongo.locations"] == 2
        served = await locations.get("NL", "ABC", "LOC1")
        assert served is not None and served["evses"][0]["status"] == "AVAILABLE"
        assert await locations.get("NL", "ABC", "LOC4") is not None
        listed = await _cli(s, "dead-letters", "list", "--view", "mysql.hierarchy", "--json")
        assert listed.returncode == 0, listed.stderr
        lines = [json.loads(line) for line in listed.stdout.strip().splitlines()]
        assert {d["key"] for d in lines[:-1]} == {LOC, LOC_POISONED_ALONE}
        assert lines[-1]["unresolved_per_view"]["mysql.hierarchy"] == 2

        # --- /readyz shows them (and stays ready: everything else is served).
        ready = await _readyz(s)
        assert ready["status"] == "ready"
        assert ready["dead_letters"] == {
            "unresolved": sum(expected.values()),
            "per_view": dead.unresolved_per_view(),
        }

        # --- retry (the command): the MySQL column widened (the fix), LOC3
        # has no later events: applied. LOC1's was overtaken by its PATCHes:
        # superseded (the view is not taken back in time). MongoDB still
        # cannot hold 40 digits: those stay quarantined, the attempt counted.
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE connectors MODIFY max_voltage DECIMAL(60, 0)"))
        retried = await _cli(s, "dead-letters", "retry", "--all")
        assert retried.returncode == 1  # some could not be applied
        results = [RetryResult(**json.loads(line)) for line in retried.stdout.strip().splitlines()]
        assert len(results) == sum(expected.values())
        outcomes = {(r.dead_letter_id.split("|")[0], r.outcome) for r in results}
        by_id = {r.dead_letter_id: r.outcome for r in results}
        loc1_put = next(
            d["_id"] for d in letters if d["view"] == "mysql.hierarchy" and d["key"] == LOC
        )
        loc3_put = next(
            d["_id"]
            for d in letters
            if d["view"] == "mysql.hierarchy" and d["key"] == LOC_POISONED_ALONE
        )
        assert by_id[loc3_put] == "APPLIED"
        assert by_id[loc1_put] == "SUPERSEDED"
        # LOC1's huge PUT in the MongoDB view: overtaken too; LOC3's fails again.
        assert ("mongo.locations", "SUPERSEDED") in outcomes
        assert ("mongo.locations", "QUARANTINED") in outcomes
        assert ("decode", "QUARANTINED") in outcomes
        assert ("mongo.tariffs", "QUARANTINED") in outcomes
        with engine.connect() as conn:
            voltage = conn.execute(
                text("SELECT max_voltage FROM connectors WHERE connector_key = :k"),
                {"k": "NL/ABC/LOC3/EVSE1/1"},
            ).scalar_one()
        assert int(voltage) == HUGE
        # LOC1's row keeps what its later events made it.
        with engine.connect() as conn:
            status = conn.execute(
                text("SELECT status FROM evses WHERE evse_key = 'NL/ABC/LOC1/EVSE1'")
            ).scalar_one()
        assert status == "AVAILABLE"

        # The outcomes are events: the live projections fold them.
        async with _projections(s, live):

            def settled() -> bool:
                docs = {d["_id"]: d for d in dead.list(status=None)}
                return (
                    docs[loc3_put]["status"] == RESOLVED
                    and docs[loc1_put]["status"] == RESOLVED
                    and all(d["attempts"] == 3 for d in docs.values() if d["status"] == QUARANTINED)
                )

            await _until(settled, what="the retry's outcomes in the view")
        docs = {d["_id"]: d for d in dead.list(status=None)}
        assert docs[loc3_put]["outcome"] == "APPLIED"
        assert docs[loc1_put]["outcome"] == "SUPERSEDED"
        assert dead.unresolved_per_view() == {
            "decode": 1,
            "mongo.locations": 1,
            "mongo.tariffs": 1,
        }
    finally:
        client.close()
        engine.dispose()
        await reads.close()


def _event_of(event: Any) -> tuple[str, bytes, str]:
    return event.aggregate_key, serialize_event(event), event.event_type


async def _dead_letter_topic_end(s: Settings) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=s.kafka_bootstrap)
    await consumer.start()
    try:
        tp = TopicPartition(s.topic(DEAD_LETTERS.name), 0)
        return int((await consumer.end_offsets([tp]))[tp])
    finally:
        await consumer.stop()


# --- a store that is away quarantines nothing -------------------------------------------


def test_a_document_store_outage_quarantines_nothing(services: Settings) -> None:
    with fresh_namespace(services) as namespace:
        asyncio.run(_outage(namespace))


async def _outage(namespace: Namespace) -> None:
    s = namespace.settings
    await ensure_topics(s.kafka_bootstrap, s.topic_prefix, 1)
    host, port = s.mongo_url.removeprefix("mongodb://").split("/")[0].split(":")
    gate = Gate((host, int(port)))
    gate.open()
    # The projections reach the store only through the gate.
    # directConnection: a server that announces a replica set (MongoDB as
    # one, SecantusDB without --standalone) names the real port as its
    # member, which the client would otherwise go to.
    through = s.model_copy(
        update={"mongo_url": f"mongodb://127.0.0.1:{gate.port}/?directConnection=true"}
    )
    client: MongoClient[dict[str, Any]] = MongoClient(
        through.mongo_url, serverSelectionTimeoutMS=500, tz_aware=True
    )
    direct: MongoClient[dict[str, Any]] = MongoClient(s.mongo_url, tz_aware=True)
    engine = mysql_engine(s)
    reads: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(s.mongo_url, tz_aware=True)
    try:
        live = views(client, s.mongo_db, engine)
        await asyncio.to_thread(live.prepare)
        locations = LocationViewQuery(reads[s.mongo_db])
        gate.shut()
        async with _projections(through, live) as running:
            ids = [f"OUT{i}" for i in range(20)]
            await _produce(
                s,
                LOCATIONS.name,
                [_event(put(location(i), location_id=i)) for i in ids],
            )

            # The MySQL hierarchy (its store is up) gets them; the MongoDB
            # views wait, retrying, for as long as the gate is shut.
            def in_mysql() -> bool:
                with engine.connect() as conn:
                    n = conn.execute(text("SELECT COUNT(*) FROM buildings")).scalar_one()
                return bool(n == 20)

            await _until(in_mysql, what="the hierarchy while MongoDB is away")
            await asyncio.sleep(3)  # several failed attempts with backoff
            assert all([await locations.get("NL", "ABC", i) is None for i in ids])
            assert not running.done()
            gate.open()
            await _until(
                lambda: _all_served(locations, ids),
                what="every location once the store is back",
            )
            assert not running.done()
        assert DeadLetterQuery(direct[s.mongo_db]).list(status=None) == []
        assert await _dead_letter_topic_end(s) == 0
    finally:
        gate.close()
        client.close()
        direct.close()
        engine.dispose()
        await reads.close()


def test_a_mariadb_outage_quarantines_nothing(services: Settings) -> None:
    with fresh_namespace(services) as namespace:
        asyncio.run(_mysql_outage(namespace))


async def _mysql_outage(namespace: Namespace) -> None:
    s = namespace.settings
    await ensure_topics(s.kafka_bootstrap, s.topic_prefix, 1)
    url = make_url(s.mysql_url)
    gate = Gate((url.host or "127.0.0.1", url.port or 3306))
    gate.open()
    client: MongoClient[dict[str, Any]] = MongoClient(s.mongo_url, tz_aware=True)
    # The projections reach MariaDB only through the gate; the test reads it directly.
    engine = create_engine(url.set(host="127.0.0.1", port=gate.port), pool_pre_ping=True)
    direct = mysql_engine(s)
    reads: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(s.mongo_url, tz_aware=True)
    try:
        live = views(client, s.mongo_db, engine)
        await asyncio.to_thread(live.prepare)
        locations = LocationViewQuery(reads[s.mongo_db])
        gate.shut()
        async with _projections(s, live) as running:
            ids = [f"OUT{i}" for i in range(20)]
            await _produce(
                s,
                LOCATIONS.name,
                [_event(put(location(i), location_id=i)) for i in ids],
            )
            await _until(
                lambda: _all_served(locations, ids),
                what="the MongoDB views while MariaDB is away",
            )
            await asyncio.sleep(3)  # several failed attempts with backoff

            def buildings() -> int:
                with direct.connect() as conn:
                    return int(conn.execute(text("SELECT COUNT(*) FROM buildings")).scalar_one())

            assert buildings() == 0
            assert not running.done()
            gate.open()
            await _until(lambda: buildings() == 20, what="the hierarchy once MariaDB is back")
            assert not running.done()
        assert DeadLetterQuery(live.mongo).list(status=None) == []
        assert await _dead_letter_topic_end(s) == 0
    finally:
        gate.close()
        client.close()
        engine.dispose()
        direct.dispose()
        await reads.close()
