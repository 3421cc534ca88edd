"""The AFIR view (projections/mongo/afir.py) against the real MongoDB-wire
server and Kafka: the fold of our locations, statuses and ad-hoc tariffs,
its position guard under re-delivery, a tariff change re-pricing the sites
that name it, a replay from the real topics; and the AFIR pusher
(processors/afir_push.py) delivering deltas from the live stream to a local
receiver, in order, after a refused delivery."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import pytest
from pydantic import SecretStr
from pymongo import MongoClient
from pymongo.database import Database

from ocpi_hub.bootstrap import afir_publisher, async_mongo_client
from ocpi_hub.settings import Settings
from processors.afir_push import AfirPusher
from producers import afir
from producers.locations import Origin, plan_patch, plan_put
from producers.log import KafkaEventLog, ensure_topics
from producers.tariffs import plan_put as plan_tariff_put
from projections.dead_letters import ConcurrentWriteError
from projections.mongo.afir import SITES, AfirViewQuery, AfirViewWriter
from projections.mongo.afir import TARIFFS as TARIFFS_VIEW
from projections.mongo.folding import Doc
from projections.position import Record
from projections.runner import replay, run_live
from schemas.afir import feed_schema
from schemas.events import EvseStatusResolved, Party
from schemas.events.locations import EvseStatusResolvedPayload, LocationObjectRef
from schemas.events.tariffs import TariffRef
from schemas.ocpi.common import format_ocpi_datetime
from schemas.ocpi.locations import EvseStatus
from schemas.ocpi.tariffs import loads_exact
from schemas.topics import EVSE_STATUS, LOCATIONS, TARIFFS
from tests.afir_receiver import afir_receiver
from tests.conftest import fresh_namespace
from tests.ocpi_objects import connector, evse, location
from tests.services import Namespace

US = Party(country_code="NL", party_id="ABC")
ORIGIN = Origin(US, "corr")
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
VALIDATOR = jsonschema.Draft202012Validator(feed_schema())


def at(minutes: float) -> str:
    return format_ocpi_datetime(T0 + timedelta(minutes=minutes))


def loc_ref(
    location_id: str = "LOC1", party_id: str = "ABC", evse_uid: str | None = None
) -> LocationObjectRef:
    return LocationObjectRef(
        country_code="NL", party_id=party_id, location_id=location_id, evse_uid=evse_uid
    )


def put_location(location_id: str = "LOC1", party_id: str = "ABC", **fields: Any) -> Any:
    body = location(
        location_id,
        party_id=party_id,
        at=at(0),
        evses=[
            evse(
                "E1",
                evse_id="NL*ABC*E1",
                at=at(0),
                connectors=[connector(tariff_ids=["ADHOC"], at=at(0))],
            ),
            evse("E2", at=at(0)),
        ],
        **fields,
    )
    return plan_put(loc_ref(location_id, party_id), body, None, ORIGIN, T0).event


def tariff_put(price: float, minutes: float) -> Any:
    body = {
        "country_code": "NL",
        "party_id": "ABC",
        "id": "ADHOC",
        "currency": "EUR",
        "type": "AD_HOC_PAYMENT",
        "elements": [{"price_components": [{"type": "ENERGY", "price": price, "step_size": 1}]}],
        "last_updated": at(minutes),
    }
    ref = TariffRef(country_code="NL", party_id="ABC", tariff_id="ADHOC")
    return plan_tariff_put(ref, loads_exact(_json(body)), None, ORIGIN, T0).event


def _json(body: Any) -> str:
    import json

    return json.dumps(body)


def resolved(status: EvseStatus, minutes: float, evse_uid: str = "E1") -> EvseStatusResolved:
    return EvseStatusResolved(
        event_id=uuid.uuid4(),
        aggregate_key="NL/ABC/LOC1",
        occurred_at=T0,
        recorded_at=T0,
        source=US,
        correlation_id="corr",
        payload=EvseStatusResolvedPayload(
            country_code="NL",
            party_id="ABC",
            location_id="LOC1",
            evse_uid=evse_uid,
            status=status,
            last_updated=T0 + timedelta(minutes=minutes),
            reported_status=status,
            cause="charger",
        ),
    )


def rec(topic: str, event: Any, offset: int) -> Record[object]:
    return Record(topic, 0, offset, event)


@pytest.fixture(scope="module")
def db(namespace: Namespace) -> Iterator[Database[Doc]]:
    with MongoClient(namespace.settings.mongo_url) as client:
        database: Database[Doc] = client[f"{namespace.name}_afirview"]
        AfirViewWriter(database, US, "en").prepare()
        yield database
        client.drop_database(database.name)


@pytest.fixture(autouse=True)
def empty(db: Database[Doc]) -> None:
    AfirViewWriter(db, US, "en").wipe()


def statuses(doc: Doc) -> list[str]:
    station = doc["dynamic"]["energyInfrastructureStationStatus"][0]
    return [
        p["aegiElectricChargingPointStatus"]["status"]["value"]
        for p in station["refillPointStatus"]
    ]


def price_of(record: Doc) -> float:
    station = record["energyInfrastructureStationStatus"][0]
    update = station["refillPointStatus"][0]["aegiElectricChargingPointStatus"]["energyRateUpdate"]
    value: float = update[0]["energyPrice"][0]["value"]
    return value


def test_our_published_location_folds_with_its_statuses_and_price(db: Database[Doc]) -> None:
    writer = AfirViewWriter(db, US, "en")
    batch = [
        rec(TARIFFS.name, tariff_put(0.45, 0), 0),
        rec(LOCATIONS.name, put_location(), 0),
        rec(LOCATIONS.name, put_location("OTHER", party_id="XYZ"), 1),  # a partner's: not ours
        rec(EVSE_STATUS.name, resolved(EvseStatus.CHARGING, 5), 0),
    ]
    assert writer.apply(batch) == 2  # one tariff, one site
    docs = list(db[SITES].find())
    assert [d["_id"] for d in docs] == ["NL/ABC/LOC1"]
    doc = docs[0]
    assert statuses(doc) == ["charging", "available"]
    assert price_of(doc["dynamic"]) == 0.45
    assert doc["_dynamic_ts"] == "2026-12-01T10:05:00.000000Z"
    assert doc["static"]["idG"] == "NL-ABC-LOC1"
    # Re-delivered: nothing applied again, the document is as it was.
    before = db[SITES].find_one({"_id": "NL/ABC/LOC1"})
    writer.apply(batch)
    assert db[SITES].find_one({"_id": "NL/ABC/LOC1"}) == before


def test_a_tariff_change_reprices_the_sites_naming_it(db: Database[Doc]) -> None:
    writer = AfirViewWriter(db, US, "en")
    writer.apply(
        [rec(TARIFFS.name, tariff_put(0.45, 0), 0), rec(LOCATIONS.name, put_location(), 0)]
    )
    version = db[SITES].find_one()["static"]["versionG"]  # type: ignore[index]
    writer.apply([rec(TARIFFS.name, tariff_put(0.52, 30), 1)])
    doc = db[SITES].find_one()
    assert doc is not None
    assert price_of(doc["dynamic"]) == 0.52
    assert doc["static"]["versionG"] != version  # the static rate changed too
    assert doc["_dynamic_ts"] == "2026-12-01T10:30:00.000000Z"


def publish_patch(db: Database[Doc], publish: bool, minutes: float) -> Any:
    held = db[SITES].find_one()["state"]["asserted"]  # type: ignore[index]
    body = {"publish": publish, "last_updated": at(minutes)}
    return plan_patch(loc_ref(), body, held, ORIGIN, T0).event


def test_an_unpublished_location_leaves_the_feed_with_a_withdrawal(db: Database[Doc]) -> None:
    writer = AfirViewWriter(db, US, "en")
    writer.apply(
        [rec(TARIFFS.name, tariff_put(0.45, 0), 0), rec(LOCATIONS.name, put_location(), 0)]
    )
    shown = db[SITES].find_one()
    assert shown is not None and shown["static"] is not None and shown["_withdrawn"] is False
    writer.apply([rec(LOCATIONS.name, publish_patch(db, False, 10), 1)])
    doc = db[SITES].find_one()
    assert doc is not None and doc["static"] is None and doc["_withdrawn"] is True
    gone = doc["dynamic"]
    # Every refill point it last showed, removed, at the versions last shown.
    assert gone["reference"] == {
        "targetClass": "FacilityObject",
        "idG": "NL-ABC-LOC1",
        "versionG": shown["static"]["versionG"],
    }
    assert statuses(doc) == ["removed", "removed"]
    station = gone["energyInfrastructureStationStatus"][0]
    assert station["isAvailable"] is False
    points = shown["static"]["energyInfrastructureStation"][0]["refillPoint"]
    assert [
        p["aegiElectricChargingPointStatus"]["reference"] for p in station["refillPointStatus"]
    ] == [
        {
            "targetClass": "FacilityObject",
            "idG": p["aegiElectricChargingPoint"]["idG"],
            "versionG": p["aegiElectricChargingPoint"]["versionG"],
        }
        for p in points
    ]
    assert gone["lastUpdated"] == "2026-12-01T10:10:00Z"
    assert doc["_dynamic_ts"] == "2026-12-01T10:10:00.000000Z"
    publication = afir.status_publication(afir_publisher(Settings()), [gone], T0)
    assert list(VALIDATOR.iter_errors(publication)) == []

    # A later change while unpublished keeps the same withdrawal.
    writer.apply([rec(LOCATIONS.name, publish_patch(db, False, 20), 2)])
    later = db[SITES].find_one()
    assert later is not None and later["dynamic"] == gone and later["_withdrawn"] is True
    # Published again: in the feed again, no withdrawal.
    writer.apply([rec(LOCATIONS.name, publish_patch(db, True, 30), 3)])
    back = db[SITES].find_one()
    assert back is not None and back["_withdrawn"] is False
    assert statuses(back) == ["available", "available"]


def test_a_withdrawal_is_the_same_however_the_events_are_batched(db: Database[Doc]) -> None:
    writer = AfirViewWriter(db, US, "en")
    writer.apply(
        [rec(TARIFFS.name, tariff_put(0.45, 0), 0), rec(LOCATIONS.name, put_location(), 0)]
    )
    off, still_off = publish_patch(db, False, 10), publish_patch(db, False, 20)
    writer.apply([rec(LOCATIONS.name, off, 1)])
    writer.apply([rec(LOCATIONS.name, still_off, 2)])
    one_by_one = db[SITES].find_one({}, {"_version": 0})
    assert one_by_one is not None and one_by_one["_withdrawn"] is True
    writer.wipe()
    # A replay folds all three at once: the location was published in between.
    writer.apply(
        [
            rec(TARIFFS.name, tariff_put(0.45, 0), 0),
            rec(LOCATIONS.name, put_location(), 0),
            rec(LOCATIONS.name, off, 1),
            rec(LOCATIONS.name, still_off, 2),
        ]
    )
    assert db[SITES].find_one({}, {"_version": 0}) == one_by_one
    # Never published: no withdrawal (its id is not announced to anybody).
    writer.apply([rec(LOCATIONS.name, put_location("HIDDEN", publish=False), 3)])
    hidden = db[SITES].find_one({"_id": "NL/ABC/HIDDEN"})
    assert hidden is not None and hidden["dynamic"] is None and hidden["_withdrawn"] is False


async def test_the_query_serves_records_since_a_time(db: Database[Doc], services: Settings) -> None:
    writer = AfirViewWriter(db, US, "en")
    writer.apply(
        [
            rec(LOCATIONS.name, put_location("LOC1"), 0),
            rec(LOCATIONS.name, put_location("LOC2"), 1),
            rec(EVSE_STATUS.name, resolved(EvseStatus.OUTOFORDER, 20), 0),
        ]
    )
    aio = async_mongo_client(services)
    try:
        query = AfirViewQuery(aio[db.name])
        assert len(await query.records("static")) == 2
        assert len(await query.records("dynamic")) == 2
        recent = await query.records("dynamic", "2026-12-01T10:10:00.000000Z")
        assert [r["reference"]["idG"] for r in recent] == ["NL-ABC-LOC1"]
        # LOC2 withdrawn: gone from the whole feed, its withdrawal in a delta.
        held = db[SITES].find_one({"_id": "NL/ABC/LOC2"})["state"]["asserted"]  # type: ignore[index]
        body = {"publish": False, "last_updated": at(30)}
        writer.apply(
            [rec(LOCATIONS.name, plan_patch(loc_ref("LOC2"), body, held, ORIGIN, T0).event, 2)]
        )
        assert [r["idG"] for r in await query.records("static")] == ["NL-ABC-LOC1"]
        assert [r["reference"]["idG"] for r in await query.records("dynamic")] == ["NL-ABC-LOC1"]
        recent = await query.records("dynamic", "2026-12-01T10:25:00.000000Z")
        assert [r["reference"]["idG"] for r in recent] == ["NL-ABC-LOC2"]
    finally:
        await aio.close()


def test_replay_from_the_topics_rebuilds_the_view(services: Settings) -> None:
    with fresh_namespace(services) as namespace:
        asyncio.run(_replay(namespace))


async def _replay(namespace: Namespace) -> None:
    s = namespace.settings
    await ensure_topics(s.kafka_bootstrap, s.topic_prefix, 1)
    log = KafkaEventLog(s.kafka_bootstrap, s.topic_prefix)
    await log.start()
    try:
        await log.append([tariff_put(0.45, 0), put_location(), resolved(EvseStatus.BLOCKED, 3)])
    finally:
        await log.stop()
    with MongoClient(s.mongo_url) as client:
        db: Database[Doc] = client[f"{namespace.name}_afirreplay"]
        one_by_one: Database[Doc] = client[f"{namespace.name}_afirreplay1"]
        for target, batch in ((db, 10), (one_by_one, 1)):
            writer = AfirViewWriter(target, US, "en")
            writer.prepare()
            await asyncio.wait_for(
                replay(s.kafka_bootstrap, s.topic_prefix, [writer], batch_size=batch), timeout=60
            )
        doc = db[SITES].find_one()
        assert doc is not None
        assert statuses(doc) == ["blocked", "available"]
        assert price_of(doc["dynamic"]) == 0.45
        # However the events are batched, the same documents (what
        # `ocpi-hub replay --compare` checks of the live view; the write
        # counter counts batches, not events).
        for coll in (SITES, TARIFFS_VIEW):
            a = list(db[coll].find({}, {"_version": 0}))
            assert a == list(one_by_one[coll].find({}, {"_version": 0}))
            assert a
        client.drop_database(db.name)
        client.drop_database(one_by_one.name)


def test_the_pusher_delivers_deltas_in_order_after_a_refusal(services: Settings) -> None:
    with fresh_namespace(services) as namespace, afir_receiver(fail_first=1) as receiver:
        s = namespace.settings.model_copy(
            update={
                "party_country_code": "NL",
                "party_id": "ABC",
                "afir_push_url": receiver.url,
                "afir_push_token": SecretStr("push-secret"),
                "afir_push_retry_initial_s": 0.1,
                "url_policy_allow_private": True,
                "mongo_db": f"{namespace.name}_afirpush",
            }
        )
        asyncio.run(_push(s, receiver))


async def _push(s: Settings, receiver: Any) -> None:
    await ensure_topics(s.kafka_bootstrap, s.topic_prefix, 1)
    stop = asyncio.Event()
    with MongoClient(s.mongo_url) as client:
        writer = AfirViewWriter(client[s.mongo_db], US, "en")
        writer.prepare()
        aio = async_mongo_client(s)
        pusher = AfirPusher(s, AfirViewQuery(aio[s.mongo_db]), afir_publisher(s), US)
        tasks = [
            asyncio.create_task(
                run_live(
                    s.kafka_bootstrap,
                    s.topic_prefix,
                    [writer],
                    batch_size=100,
                    poll_ms=100,
                    stop=stop,
                )
            ),
            asyncio.create_task(pusher.run(stop)),
        ]
        log = KafkaEventLog(s.kafka_bootstrap, s.topic_prefix)
        await log.start()
        try:
            await asyncio.sleep(3)  # the pusher's fresh group starts at the end
            await log.append([put_location()])
            for status, minute in (
                (EvseStatus.CHARGING, 1),
                (EvseStatus.AVAILABLE, 2),
                (EvseStatus.OUTOFORDER, 3),
            ):
                await log.append([resolved(status, minute)])
            for _ in range(300):
                if _last_status(receiver.bodies()) == "outOfOrder":
                    break
                await asyncio.sleep(0.1)
        finally:
            stop.set()
            await log.stop()
            await asyncio.gather(*tasks, return_exceptions=True)
            await aio.close()
            client.drop_database(s.mongo_db)
    bodies = receiver.bodies()
    assert receiver.refused == 1  # the first delivery was refused and retried
    kinds = [next(k for k in b["payload"] if k.startswith("aegi")) for b in bodies]
    assert kinds[0] == "aegiEnergyInfrastructureTablePublication"
    assert set(kinds[1:]) == {"aegiEnergyInfrastructureStatusPublication"}
    for body in bodies:
        assert list(VALIDATOR.iter_errors(body)) == []
    seen = []
    for body in bodies[1:]:
        pub = body["payload"]["aegiEnergyInfrastructureStatusPublication"]
        station = pub["energyInfrastructureSiteStatus"][0]["energyInfrastructureStationStatus"][0]
        point = station["refillPointStatus"][0]["aegiElectricChargingPointStatus"]
        seen.append((point["lastUpdated"], point["status"]["value"]))
    # Each delta is the state as of its event or later (the view is read once
    # it applied the event): in order, never older than one sent before, no
    # state twice, and the last one is the last change.
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    assert seen[-1] == ("2026-12-01T10:03:00Z", "outOfOrder")
    assert {auth for _, auth, _ in receiver.received} == {"Bearer push-secret"}


def _last_status(bodies: list[Any]) -> str | None:
    for body in reversed(bodies):
        pub = body["payload"].get("aegiEnergyInfrastructureStatusPublication")
        if pub:
            station = pub["energyInfrastructureSiteStatus"][0]["energyInfrastructureStationStatus"][
                0
            ]
            value: str = station["refillPointStatus"][0]["aegiElectricChargingPointStatus"][
                "status"
            ]["value"]
            return value
    return None


def test_two_instances_writing_one_site_lose_nothing(db: Database[Doc]) -> None:
    """Scale-out: one projections instance applies a site's statuses while
    another re-prices it from its tariff partition; each write is guarded by
    the document's write counter and retried, so neither undoes the other.
    A stress check, not a proof: without the guard it failed about one run
    in six here (2026-12-07), with it none of many."""
    import threading

    base = AfirViewWriter(db, US, "en")
    base.apply([rec(TARIFFS.name, tariff_put(0.40, 0), 0), rec(LOCATIONS.name, put_location(), 0)])
    kinds = [EvseStatus.CHARGING, EvseStatus.AVAILABLE, EvseStatus.BLOCKED]
    statuses_in = [rec(EVSE_STATUS.name, resolved(kinds[i % 3], i + 1), i) for i in range(100)]
    prices_in = [
        rec(TARIFFS.name, tariff_put(round(0.41 + i / 100, 2), i + 1), i + 1) for i in range(100)
    ]
    errors: list[BaseException] = []

    def run(writer: AfirViewWriter, records: list[Record[object]]) -> None:
        try:
            for r in records:
                # As the runner does: a batch that kept colliding is applied
                # again (ConcurrentWriteError is transient, never quarantined).
                for _ in range(20):
                    try:
                        writer.apply([r])
                        break
                    except ConcurrentWriteError:
                        continue
                else:
                    raise AssertionError("a batch collided 20 times in a row")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(AfirViewWriter(db, US, "en"), statuses_in)),
        threading.Thread(target=run, args=(AfirViewWriter(db, US, "en"), prices_in)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    doc = db[SITES].find_one()
    assert doc is not None
    assert doc["_positions"]["ocpi_evse-status_v1@0"] == 99
    assert statuses(doc)[0] == STATUS_NAMES[kinds[99 % 3]]
    assert price_of(doc["dynamic"]) == 1.40
    # And exactly what one writer makes of the same records.
    alone: Database[Doc] = db.client[f"{db.name}_alone"]
    try:
        single = AfirViewWriter(alone, US, "en")
        single.apply(
            [rec(TARIFFS.name, tariff_put(0.40, 0), 0), rec(LOCATIONS.name, put_location(), 0)]
        )
        single.apply(statuses_in + prices_in)
        expected = alone[SITES].find_one({}, {"_version": 0})
        assert db[SITES].find_one({}, {"_version": 0}) == expected
    finally:
        db.client.drop_database(alone.name)


STATUS_NAMES = {
    EvseStatus.CHARGING: "charging",
    EvseStatus.AVAILABLE: "available",
    EvseStatus.BLOCKED: "blocked",
}
