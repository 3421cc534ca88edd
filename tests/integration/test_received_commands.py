"""Received commands (we as CPO) against the real services: the ``received_commands`` view
folded from the real topic (and rebuilt by replay), the Redis adapters of
the receiver's ports, the receiver on the one write path (a cancel right
after its reservation, with no projection of commands running), and the
callback sender POSTing results to a real HTTP receiver over real Kafka,
with delivered markers in real Redis."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi.testclient import TestClient
from pymongo import AsyncMongoClient, MongoClient
from pymongo.database import Database

from api.app import create_app
from ocpi_hub.secrets import hash_token
from ocpi_hub.settings import Settings
from processors.command_callbacks import COMMAND_CALLBACKS
from processors.command_results import Pending, decide, evolve, overdue
from processors.result_callbacks import RedisDeliveredMarks, ResultCallbackSender
from producers.log import KafkaEventLog, ensure_topics
from producers.partners import PartnerState
from producers.received_commands import RedisPresence, RedisReservationIds, presence_key
from projections.mongo.charge_points import ChargePointViewWriter
from projections.mongo.folding import Doc
from projections.mongo.received_commands import ReceivedCommandViewQuery, ReceivedCommandViewWriter
from projections.runner import replay
from schemas.events import CommandResultDecided
from schemas.ocpi.credentials import BusinessDetails, CredentialsRole, Role
from tests.conftest import fresh_namespace
from tests.integration.test_push import VAULT, Receiver, serving, until
from tests.integration.test_sent_commands import register_partner
from tests.ocpi_objects import location
from tests.ops_admin import as_admin
from tests.services import Namespace
from tests.token_objects import token
from tests.unit.test_command_results import accepted, answered

RECEIVER = "/ocpi/cpo/2.2.1/commands"

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def namespace(services: Settings) -> Iterator[Namespace]:
    with fresh_namespace(services) as ns:
        yield ns


def settings_of(ns: Namespace) -> Settings:
    return ns.settings.model_copy(
        update={
            "party_country_code": "ZZ",
            "party_id": "HUB",
            "push_retry_initial_s": 0.05,
            "push_retry_max_s": 0.4,
            "push_poll_ms": 100,
            "outbound_timeout_s": 2.0,
        }
    )


def result_of(command_id: str, url: str) -> CommandResultDecided:
    acc = accepted(command_id)
    acc = acc.model_copy(update={"payload": acc.payload.model_copy(update={"response_url": url})})
    state = evolve(None, acc)
    [deadline] = overdue([state], T0 + timedelta(seconds=31))  # type: ignore[list-item]
    result = decide(state, deadline, T0 + timedelta(seconds=31))
    assert result is not None
    return result


# --- the view ---------------------------------------------------------------------


async def test_the_view_folds_a_command_and_replay_rebuilds_it(
    aio_mongo: AsyncMongoClient[Doc], namespace: Namespace
) -> None:
    s = settings_of(namespace)
    await ensure_topics(s.kafka_bootstrap, s.topic_prefix, 1)
    log = KafkaEventLog(s.kafka_bootstrap, s.topic_prefix)
    await log.start()
    command_id = uuid.uuid4().hex
    acc = accepted(command_id)
    state: Pending | None = evolve(None, acc)
    answer = answered(command_id, "ACCEPTED")
    result = decide(state, answer, T0 + timedelta(seconds=3))
    assert result is not None
    try:
        await log.append([acc, answer, result, result])  # the result read twice
    finally:
        await log.stop()
    with MongoClient(s.mongo_url, tz_aware=True) as client:
        docs = []
        for name in ("view_a", "view_b"):
            db: Database[Doc] = client[f"{namespace.name}_{name}"]
            writer = ReceivedCommandViewWriter(db)
            writer.prepare()
            await replay(s.kafka_bootstrap, s.topic_prefix, [writer], batch_size=100)
            doc = await ReceivedCommandViewQuery(aio_mongo[db.name]).get(command_id)
            assert doc is not None
            docs.append({k: v for k, v in doc.items() if k != "_version"})
            raw = db["received_commands"].find_one({"_id": command_id})
            assert raw is not None and raw["_version"] == 1  # one write for the batch
            client.drop_database(db.name)
    assert docs[0] == docs[1]
    doc = docs[0]
    assert (doc["command"], doc["partner_id"], doc["response_url"]) == (
        "START_SESSION",
        "abc",
        acc.payload.response_url,
    )
    assert doc["response"] == {"result": "ACCEPTED", "timeout": 30}
    assert doc["target"]["charge_point_id"] == "CP1"
    assert (doc["result"], doc["decided_by"]) == ("ACCEPTED", "charger")
    assert doc["charger_answer"]["charger_status"] == "Accepted"


# --- Redis adapters of the receiver's ports ----------------------------------------


async def test_reservation_ids_are_stable_per_sender_and_unique_across(
    namespace: Namespace,
) -> None:
    s = settings_of(namespace)
    redis = aioredis.Redis.from_url(s.redis_url)
    try:
        ids = RedisReservationIds(redis, s.topic_prefix)
        a = await ids.allocate("NL/ABD/R1")
        b = await ids.allocate("DE/XYZ/R1")
        racing = await asyncio.gather(*(ids.allocate("BE/QQQ/R9") for _ in range(5)))
        assert await ids.allocate("NL/ABD/R1") == a
        assert len({a, b, racing[0]}) == 3 and len(set(racing)) == 1
        presence = RedisPresence(redis, s.topic_prefix)
        await redis.set(presence_key(s.topic_prefix, "CP-ON"), "gw-1", ex=30)
        assert await presence.present(["CP-ON", "CP-OFF"]) == frozenset({"CP-ON"})
        assert await ids.reserved_by("NL/ABD/R1") is None
        await ids.reserved("NL/ABD/R1", "cmd-1")
        await ids.reserved("NL/ABD/R1", "cmd-2")  # a RESERVE_NOW that replaced it
        await ids.reserved("DE/XYZ/R1", "cmd-3")
        assert await ids.reserved_by("NL/ABD/R1") == "cmd-2"
        assert await ids.reserved_by("DE/XYZ/R1") == "cmd-3"
    finally:
        await redis.aclose()


# --- the receiver on the one write path ---------------------------------------------


def test_a_cancel_sent_right_after_its_reservation_finds_it(services: Settings) -> None:
    """No projection of ``ocpi.commands.v1`` runs here: the cancel finds the
    reservation in the write path, as the reservation's answer left it."""
    with fresh_namespace(services) as ns:
        s = settings_of(ns)
        token_c = f"emsp-token-{uuid.uuid4().hex[:8]}"
        register_partner(
            s, emsp("emsp-r", "unused").model_copy(update={"their_token_hash": hash_token(token_c)})
        )
        headers = {"Authorization": "Token " + base64.b64encode(token_c.encode()).decode()}
        with TestClient(as_admin(create_app(s))) as api:
            ours = location("LOC-R", country_code="ZZ", party_id="HUB")
            assert api.put("/ops/locations/LOC-R", json=ours).status_code == 201
            registration = {
                "location_id": "LOC-R",
                "password": "correct-horse-1",
                "connectors": [{"ocpp_connector_id": 1, "evse_uid": "EVSE1", "connector_id": "1"}],
            }
            assert api.put("/ops/charge-points/CP-R", json=registration).status_code == 201
            # Which charge points are at a location is a view query: project
            # the registry (and only the registry).
            with MongoClient(s.mongo_url, tz_aware=True) as client:
                registry = ChargePointViewWriter(client[s.mongo_db])
                asyncio.run(replay(s.kafka_bootstrap, s.topic_prefix, [registry], batch_size=50))
            asyncio.run(_present(s, "CP-R"))
            url = "https://emsp.example.com/ocpi/emsp/2.2.1/commands/RESERVE_NOW/1"
            reserve = {
                "response_url": url,
                "token": token(country_code="NL", party_id="ABD"),
                "expiry_date": "2026-06-01T13:00:00Z",
                "reservation_id": "R-42",
                "location_id": "LOC-R",
                "evse_uid": "EVSE1",
            }
            cancel = {"response_url": url.replace("RESERVE_NOW", "CANCEL_RESERVATION"),
                      "reservation_id": "r-42"}  # fmt: skip
            reserved = api.post(f"{RECEIVER}/RESERVE_NOW", json=reserve, headers=headers)
            assert reserved.json()["data"]["result"] == "ACCEPTED", reserved.text
            cancelled = api.post(f"{RECEIVER}/CANCEL_RESERVATION", json=cancel, headers=headers)
            assert cancelled.json()["data"]["result"] == "ACCEPTED", cancelled.text
        with MongoClient(s.mongo_url, tz_aware=True) as client:
            db = client[s.mongo_db]
            assert db["received_commands"].count_documents({}) == 0  # never projected
            writer = ReceivedCommandViewWriter(db)
            writer.prepare()
            asyncio.run(replay(s.kafka_bootstrap, s.topic_prefix, [writer], batch_size=50))
            docs = {d["command"]: d for d in db["received_commands"].find()}
    target = docs["RESERVE_NOW"]["target"]
    assert target["charge_point_id"] == "CP-R" and target["ocpp_reservation_id"] >= 1
    assert docs["CANCEL_RESERVATION"]["target"] == target


async def _present(s: Settings, charge_point_id: str) -> None:
    redis = aioredis.Redis.from_url(s.redis_url)
    try:
        await redis.set(presence_key(s.topic_prefix, charge_point_id), "gw-1", ex=60)
    finally:
        await redis.aclose()


# --- the callback sender -----------------------------------------------------------


def emsp(partner_id: str, our_token: str) -> PartnerState:
    """A registered partner eMSP NL/ABD, and our token for it."""
    return PartnerState(
        partner_id=partner_id,
        status="registered",
        roles=(
            CredentialsRole(
                role=Role.EMSP,
                business_details=BusinessDetails(name="ABD Mobility"),
                country_code="NL",
                party_id="ABD",
            ),
        ),
        our_token_encrypted=VAULT.encrypt(our_token),
    )


class Partners:
    def __init__(self, token: str) -> None:
        self.state = emsp("abc", token)

    async def get(self, partner_id: str) -> PartnerState | None:
        return self.state if partner_id == "abc" else None


@pytest.fixture(scope="module")
def callback_namespace(services: Settings) -> Iterator[Namespace]:
    """A namespace of its own: no other test's results on its topic."""
    with fresh_namespace(services) as ns:
        yield ns


async def test_a_result_is_posted_once_with_our_token_after_a_retry(
    callback_namespace: Namespace,
) -> None:
    s = settings_of(callback_namespace)
    await ensure_topics(s.kafka_bootstrap, s.topic_prefix, 1)
    token = f"our-token-{uuid.uuid4().hex[:6]}"

    async def first_fails(n: int, path: str) -> tuple[int, int | None]:
        return (500, None) if n == 1 else (200, 1000)

    receiver = Receiver(first_fails)
    redis = aioredis.Redis.from_url(s.redis_url)
    log = KafkaEventLog(s.kafka_bootstrap, s.topic_prefix)
    await log.start()
    stop = asyncio.Event()
    try:
        async with serving(receiver) as base:
            sender = ResultCallbackSender(
                s,
                Partners(token),
                VAULT,
                RedisDeliveredMarks(redis, s.topic_prefix),
                COMMAND_CALLBACKS,
            )
            task = asyncio.create_task(sender.run(stop))
            first = result_of(uuid.uuid4().hex, f"{base}/cb/one")
            await log.append([first])
            await until(lambda: len(receiver.delivered("/ocpi")) == 1, 30, "the first result")
            # The same decision again (a re-run of the results processor),
            # then another command's: only the other one is POSTed.
            second = result_of(uuid.uuid4().hex, f"{base}/cb/two")
            await log.append([first, second])
            await until(lambda: len(receiver.delivered("/ocpi")) == 2, 30, "the second result")
            await asyncio.sleep(1.0)
            stop.set()
            await asyncio.wait_for(task, 20)
    finally:
        await log.stop()
        await redis.aclose()
    paths = [r.path for r in receiver.requests]
    assert paths == [
        "/ocpi/emsp/2.2.1/locations/cb/one",
        "/ocpi/emsp/2.2.1/locations/cb/one",
        "/ocpi/emsp/2.2.1/locations/cb/two",
    ]
    assert [r.answered for r in receiver.requests] == [500, 200, 200]
    sent = receiver.requests[1]
    assert sent.method == "POST"
    assert sent.body == {
        "result": "TIMEOUT",
        "message": [{"language": "en", "text": "the charger did not answer in time"}],
    }
    assert sent.headers["authorization"] == "Token " + base64.b64encode(token.encode()).decode()
    # Fresh ids, not those of the eMSP's request (the events' correlation id).
    assert sent.headers["x-correlation-id"] != first.correlation_id
    assert receiver.requests[0].headers["x-request-id"] != sent.headers["x-request-id"]
    assert (sent.headers["ocpi-to-country-code"], sent.headers["ocpi-to-party-id"]) == ("NL", "ABD")


async def test_an_ocpi_error_answer_is_final(namespace: Namespace) -> None:
    s = settings_of(namespace)

    async def refuses(n: int, path: str) -> tuple[int, int | None]:
        return 200, 2001

    receiver = Receiver(refuses)
    redis = aioredis.Redis.from_url(s.redis_url)
    marks = RedisDeliveredMarks(redis, s.topic_prefix)
    try:
        async with serving(receiver) as base:
            event = result_of(uuid.uuid4().hex, f"{base}/cb/refused")
            async with httpx.AsyncClient(timeout=2) as http:
                sender = ResultCallbackSender(
                    s, Partners("t"), VAULT, marks, COMMAND_CALLBACKS, http=http
                )
                assert await sender.deliver(event) == "refused"
                assert await sender.deliver(event) == "already"
    finally:
        await redis.aclose()
    assert len(receiver.requests) == 1
    assert await_marked(s, event.payload.command_id)


def await_marked(s: Settings, command_id: str) -> bool:
    import redis as sync_redis

    client = sync_redis.Redis.from_url(s.redis_url)
    try:
        return bool(client.exists(f"{s.topic_prefix}ocpi-hub:commands:callback:{command_id}"))
    finally:
        client.close()
