"""Sent commands (we as eMSP) against the real services: the ``sent_commands`` view
(fold, position guard, newest-first pages) and its replay from Kafka, and the
sending path end to end in this process: the API (real Kafka, MongoDB,
Redis) sends to a stub CPO over HTTP, the stub's result comes back to our
response_url, and the view (rebuilt by replay) shows it."""

from __future__ import annotations

import asyncio
import base64
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pymongo import AsyncMongoClient, MongoClient
from pymongo.database import Database

from api.app import create_app
from ocpi_hub.bootstrap import async_mongo_client, mysql_engine, vault
from ocpi_hub.bootstrap import views as bootstrap_views
from ocpi_hub.secrets import hash_token
from ocpi_hub.settings import Settings
from producers.log import KafkaEventLog, ensure_topics
from producers.partners import PartnerState
from producers.sent_commands import command_target, plan_result, plan_sent
from projections.mongo.folding import Doc
from projections.mongo.partners import PartnerViewWriter
from projections.mongo.sent_commands import (
    COLLECTION,
    SentCommandViewQuery,
    SentCommandViewWriter,
)
from projections.position import Record
from projections.runner import replay
from schemas.events import PartnerRegistered, Party
from schemas.events.commands import CommandAccepted
from schemas.events.partners import PartnerConnectionPayload
from schemas.ocpi.commands import (
    CommandResponse,
    CommandResponseType,
    CommandResult,
    CommandResultType,
    CommandType,
)
from schemas.ocpi.credentials import BusinessDetails, CredentialsRole, Role
from schemas.ocpi.versions import Endpoint
from tests.conftest import fresh_namespace
from tests.ops_admin import as_admin
from tests.peer_stub import peer_stub
from tests.services import Namespace
from tests.token_objects import token

NOW = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
US = Party(country_code="ZZ", party_id="HUB")
START = CommandType.START_SESSION


def _cpo(partner_id: str, commands_url: str, sealed: str, their_token: str) -> PartnerState:
    return PartnerState(
        partner_id=partner_id,
        status="registered",
        endpoints=(Endpoint(identifier="commands", role="RECEIVER", url=commands_url),),
        roles=(
            CredentialsRole(
                role=Role.CPO,
                business_details=BusinessDetails(name="CPO"),
                country_code="NL",
                party_id="CPO",
            ),
        ),
        our_token_encrypted=sealed,
        their_token_hash=hash_token(their_token),
    )


def _sent(cid: str, at: datetime = NOW, timeout: int = 30) -> Any:
    return plan_sent(
        command_id=cid,
        command=START,
        target=command_target("CPO-A", _cpo("CPO-A", "https://cpo/commands", "s", "t")),
        request={"location_id": "L1"},
        response=CommandResponse(result=CommandResponseType.ACCEPTED, timeout=timeout),
        us=US,
        now=at,
        correlation_id="corr",
    )


def _result(cid: str, result: str = "ACCEPTED", partner_id: str = "CPO-A") -> Any:
    return plan_result(
        command_id=cid,
        partner_id=partner_id,
        sender=Party(country_code="NL", party_id="CPO"),
        result=CommandResult(result=CommandResultType(result)),
        now=NOW + timedelta(seconds=5),
        correlation_id="corr",
    )


# --- the view -------------------------------------------------------------------


@pytest.fixture(scope="module")
def db(namespace: Namespace) -> Iterator[Database[Doc]]:
    with MongoClient(namespace.settings.mongo_url, tz_aware=True) as client:
        database: Database[Doc] = client[f"{namespace.name}_emspcmd"]
        SentCommandViewWriter(database).prepare()
        yield database
        client.drop_database(database.name)


@pytest.fixture(autouse=True)
def empty(db: Database[Doc]) -> None:
    db[COLLECTION].delete_many({})


def _rec(offset: int, event: Any, partition: int = 0) -> Record[Any]:
    return Record("ocpi.commands.v1", partition, offset, event)


async def test_the_view_folds_sent_and_result_and_redelivery_changes_nothing(
    aio_mongo: AsyncMongoClient[Doc],
    db: Database[Doc],
) -> None:
    writer, view = SentCommandViewWriter(db), SentCommandViewQuery(aio_mongo[db.name])
    # The result first (a fast CPO), then the send, then a second result.
    records = [_rec(0, _result("c1")), _rec(1, _sent("c1")), _rec(2, _result("c1", "FAILED"))]
    assert writer.apply(records) == 1
    state, positions = await view.read("c1")
    assert state is not None
    assert (state.result, state.response, state.timeout_s) == (
        CommandResultType.ACCEPTED,
        CommandResponseType.ACCEPTED,
        30,
    )
    assert positions == {"ocpi_commands_v1@0": 2}
    doc = db[COLLECTION].find_one({"_id": "c1"})
    assert doc is not None and (doc["partner_id"], doc["command"]) == ("CPO-A", "START_SESSION")
    assert writer.apply(records) == 0  # re-delivered: nothing written
    # Events of the other role (as CPO) on the same topic are not this view's.
    accepted = CommandAccepted.model_construct(aggregate_key="c9")
    assert writer.apply([_rec(3, accepted)]) == 0
    assert db[COLLECTION].count_documents({}) == 1


async def test_pages_run_newest_first_per_partner(
    aio_mongo: AsyncMongoClient[Doc], db: Database[Doc]
) -> None:
    writer, view = SentCommandViewWriter(db), SentCommandViewQuery(aio_mongo[db.name])
    events = [_sent(f"c{i}", NOW + timedelta(minutes=i)) for i in range(5)]
    writer.apply([_rec(i, e) for i, e in enumerate(events)])
    writer.apply([_rec(5, _result("x-other", partner_id="CPO-B"))])
    first = await view.page(partner_id="CPO-A", after=None, limit=2)
    assert [s.command_id for s in first.items] == ["c4", "c3"]
    assert first.next_after is not None
    second = await view.page(partner_id="CPO-A", after=first.next_after, limit=2)
    third = await view.page(partner_id="CPO-A", after=second.next_after, limit=2)
    assert [s.command_id for s in second.items + third.items] == ["c2", "c1", "c0"]
    assert third.next_after is None
    assert [
        s.command_id for s in (await view.page(partner_id="CPO-B", after=None, limit=9)).items
    ] == ["x-other"]


def test_replay_rebuilds_the_view(services: Settings) -> None:
    with fresh_namespace(services) as namespace:
        asyncio.run(_replay(namespace))


async def _replay(namespace: Namespace) -> None:
    s = namespace.settings
    await ensure_topics(s.kafka_bootstrap, s.topic_prefix, 1)
    log = KafkaEventLog(s.kafka_bootstrap, s.topic_prefix)
    await log.start()
    try:
        await log.append([_sent("r1"), _result("r1", "TIMEOUT"), _result("r1", "ACCEPTED")])
    finally:
        await log.stop()
    with MongoClient(s.mongo_url, tz_aware=True) as client:
        views = bootstrap_views(client, s.mongo_db, mysql_engine(s))
        try:
            views.prepare()
            count = await replay(s.kafka_bootstrap, s.topic_prefix, views.writers, batch_size=10)
            assert count == 3
            aio = async_mongo_client(s)  # this test runs its own loop: its own client
            try:
                state, _ = await SentCommandViewQuery(aio[s.mongo_db]).read("r1")
            finally:
                await aio.close()
            assert state is not None and state.result is CommandResultType.TIMEOUT
            assert state.sent_at == NOW
        finally:
            views.mysql.dispose()


# --- the sending path, in this process, against a stub CPO ----------------------


def _auth(token_value: str) -> dict[str, str]:
    return {"Authorization": "Token " + base64.b64encode(token_value.encode()).decode()}


def register_partner(s: Settings, partner: PartnerState) -> None:
    """Record a registered partner's registration event in the log (the API
    finds the partner by its token from there, docs/adr/0024) and put it
    into the partners view, as the projection would."""
    assert partner.our_token_encrypted and partner.their_token_hash
    event = PartnerRegistered(
        event_id=uuid.uuid4(),
        aggregate_key=partner.partner_id,
        occurred_at=NOW,
        recorded_at=NOW,
        source=US,
        correlation_id="test",
        payload=PartnerConnectionPayload(
            partner_id=partner.partner_id,
            direction="inbound",
            version=partner.version or "2.2.1",
            versions_url="http://127.0.0.1:1/versions",
            endpoints=partner.endpoints,
            roles=partner.roles,
            their_token_hash=partner.their_token_hash,
            our_token_encrypted=partner.our_token_encrypted,
        ),
    )

    async def append() -> Record[PartnerRegistered]:
        await ensure_topics(s.kafka_bootstrap, s.topic_prefix, 1)
        log = KafkaEventLog(s.kafka_bootstrap, s.topic_prefix)
        await log.start()
        try:
            [at] = await log.append([event])
        finally:
            await log.stop()
        return Record("ocpi.partners.v1", at.partition, at.offset, event)

    record = asyncio.run(append())
    with MongoClient(s.mongo_url, tz_aware=True) as client:
        PartnerViewWriter(client[s.mongo_db]).apply([record])


async def _project(s: Settings) -> None:
    with MongoClient(s.mongo_url, tz_aware=True) as client:
        writer = SentCommandViewWriter(client[s.mongo_db])
        await replay(s.kafka_bootstrap, s.topic_prefix, [writer], batch_size=100)


def test_a_command_goes_to_the_cpo_and_its_result_comes_back(services: Settings) -> None:
    with fresh_namespace(services) as namespace, peer_stub("NL", "CPO", commands=True) as stub:
        s = namespace.settings.model_copy(
            update={"public_url": "https://hub.example", "read_own_writes_timeout_s": 1.0}
        )
        sealed = vault(s).encrypt(stub.token_b)
        register_partner(s, _cpo("STUB-CPO", f"{stub.base_url}/commands", sealed, "stub-token-c"))
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
            dead = f"http://127.0.0.1:{closed.getsockname()[1]}/commands"
            register_partner(s, _cpo("DEAD-CPO", dead, sealed, "dead-token-c"))
            with TestClient(as_admin(create_app(s))) as api:
                _drive(api, s, stub)
                body = {"session_id": "S1"}
                resp = api.post("/ops/commands/sent/DEAD-CPO/STOP_SESSION", json=body)
                assert (resp.status_code, resp.json()["status_code"]) == (502, 3001), resp.text
                assert stub.token_b not in resp.text


def _drive(api: TestClient, s: Settings, stub: Any) -> None:
    body = {"token": token("OURS1", country_code="ZZ", party_id="HUB"), "location_id": "L1"}
    resp = api.post("/ops/commands/sent/STUB-CPO/START_SESSION", json=body, headers=_auth("ops-x"))
    sent = resp.json()
    assert (resp.status_code, sent["status_code"]) == (200, 1000), resp.text
    cid, url = sent["data"]["command_id"], sent["data"]["response_url"]
    assert url == f"https://hub.example/ocpi/emsp/2.2.1/commands/START_SESSION/{cid}"
    [(path, authorization, received)] = stub.commands_received
    assert path == "/commands/START_SESSION"
    assert authorization == _auth(stub.token_b)["Authorization"]  # our token for the stub
    assert received["response_url"] == url
    assert received["token"]["uid"] == "OURS1"
    # A token of another party is refused, and nothing is sent.
    theirs = {**body, "token": token("X1", country_code="NL", party_id="ABC")}
    refused = api.post("/ops/commands/sent/STUB-CPO/START_SESSION", json=theirs)
    assert refused.json()["status_code"] == 2001 and len(stub.commands_received) == 1
    # The stub posts the result to our response_url with its own token.
    path_of_url = url.removeprefix("https://hub.example")
    posted = api.post(path_of_url, json={"result": "ACCEPTED"}, headers=_auth("stub-token-c"))
    assert posted.json()["status_code"] == 1000, posted.text
    asyncio.run(_project(s))
    shown = api.get(f"/ops/commands/sent/{cid}").json()
    assert shown["status_code"] == 1000, shown
    assert (shown["data"]["status"], shown["data"]["response"]) == ("ACCEPTED", "ACCEPTED")
    assert shown["data"]["request"]["response_url"] == url
