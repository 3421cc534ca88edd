"""The charge point registry and the OCPP gateway against the real services.

Registry: the ops API in-process (real Kafka, the projections running live
into the real MongoDB view): PUT/GET/DELETE, refusals that write nothing, the
document shape other slices read, replay rebuilding it.

Gateway: served in-process on a free port with the real event log, Redis
and registry view; chargers connect with ``websockets``: credentials and
paths are refused before the upgrade (nothing recorded), a malformed frame
is answered with a CallError and neither its connection nor another
charger's stops working, a second connection replaces the first.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action
from pymongo import MongoClient
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from api.app import create_app
from gateway.commands import CommandRunner
from gateway.server import Gateway, WritePathRegistry, run
from gateway.state import GatewayState
from ocpi_hub.bootstrap import Container, build_container, views
from ocpi_hub.settings import Settings
from producers import charge_points, tokens
from producers.charge_points import decide_register, parse_register
from producers.log import ensure_topics
from producers.write_path import Origin
from projections.mongo.charge_points import COLLECTION, ChargePointViewWriter
from projections.mongo.folding import Doc
from projections.runner import replay, run_live
from schemas.events import CommandAccepted, Party
from schemas.events.commands import CommandAcceptedPayload, CommandTarget
from tests.ocpi_objects import connector, evse, location
from tests.ops_admin import issue_key
from tests.services import Namespace
from tests.token_objects import token

US = Party(country_code="ZZ", party_id="HUB")
PASSWORD = "pa55word-for-tests"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def events_of(
    settings: Settings, topic: str, key: str, *, settle_s: float = 1.5
) -> list[dict[str, Any]]:
    """Every event under ``key`` on a topic (read from the start until the
    topic has been quiet for ``settle_s``)."""
    consumer = AIOKafkaConsumer(
        settings.topic(topic),
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[dict[str, Any]] = []
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=int(settle_s * 1000))
            if not batches:
                return found
            for messages in batches.values():
                for m in messages:
                    if m.key == key.encode() and m.value is not None:
                        found.append(json.loads(m.value))
    finally:
        await consumer.stop()


# --- registry -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def mongo(namespace: Namespace) -> Iterator[MongoClient[Doc]]:
    """A sync client, as the projections process has (the API's is async)."""
    with MongoClient(namespace.settings.mongo_url, tz_aware=True) as client:
        yield client


@pytest.fixture(scope="module")
async def registry(
    namespace: Namespace, mongo: MongoClient[Doc]
) -> AsyncIterator[tuple[httpx.AsyncClient, Container]]:
    settings = namespace.settings
    await ensure_topics(settings.kafka_bootstrap, settings.topic_prefix, 1)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        container: Container = app.state.container
        live = views(mongo, settings.mongo_db, container.mysql)
        await asyncio.to_thread(live.prepare)
        stop = asyncio.Event()
        projections = asyncio.ensure_future(
            run_live(
                settings.kafka_bootstrap,
                settings.topic_prefix,
                live.writers,
                batch_size=100,
                poll_ms=50,
                stop=stop,
            )
        )
        transport = httpx.ASGITransport(app=app)
        admin = {"Authorization": f"Bearer {await issue_key(app.state.write_path)}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://hub", headers=admin
        ) as client:
            yield client, container
        stop.set()
        await projections


async def _our_location(client: httpx.AsyncClient, location_id: str) -> None:
    body = location(
        location_id,
        country_code="ZZ",
        party_id="HUB",
        evses=[
            evse("E1", connectors=[connector("1")]),
            evse("E2", connectors=[connector("1"), connector("2")]),
        ],
    )
    resp = await client.put(f"/ops/locations/{location_id}", json=body)
    assert resp.status_code in (200, 201), resp.text
    assert resp.json()["status_code"] == 1000


def _registration(loc: str, **over: Any) -> dict[str, Any]:
    return {
        "location_id": loc,
        "password": PASSWORD,
        "connectors": [
            {"ocpp_connector_id": 1, "evse_uid": "E1", "connector_id": "1"},
            {"ocpp_connector_id": 2, "evse_uid": "e2", "connector_id": "2"},
        ],
        **over,
    }


async def test_registry_put_get_delete_and_the_view_document(
    registry: tuple[httpx.AsyncClient, Container], namespace: Namespace, mongo: MongoClient[Doc]
) -> None:
    client, _ = registry
    loc = f"Reg-{uuid.uuid4().hex[:6]}"
    cp = f"CP-{uuid.uuid4().hex[:8]}"
    await _our_location(client, loc)

    resp = await client.put(f"/ops/charge-points/{cp}", json=_registration(loc))
    assert resp.status_code == 201, resp.text
    assert resp.json()["status_code"] == 1000

    got = (await client.get(f"/ops/charge-points/{cp}")).json()
    assert got["status_code"] == 1000
    assert got["data"]["registered"] is True
    assert "password_hash" not in json.dumps(got) and PASSWORD not in json.dumps(got)

    doc = mongo[namespace.settings.mongo_db][COLLECTION].find_one({"_id": cp})
    assert doc is not None
    assert doc["location_key"] == f"ZZ/HUB/{loc.upper()}"
    assert doc["connectors"][1]["evse_key"] == "E2"
    assert doc["password_hash"].startswith("pbkdf2_sha256$")

    resp = await client.delete(f"/ops/charge-points/{cp}")
    assert resp.json()["status_code"] == 1000
    got = (await client.get(f"/ops/charge-points/{cp}")).json()
    assert got["data"]["registered"] is False
    assert (await client.delete(f"/ops/charge-points/{cp}")).status_code == 404

    # Replay from offset zero rebuilds the same document.
    rebuilt = mongo[f"{namespace.name}_cprebuild"]
    try:
        writer = ChargePointViewWriter(rebuilt)
        await replay(
            namespace.settings.kafka_bootstrap,
            namespace.settings.topic_prefix,
            [writer],
            batch_size=100,
        )
        again = rebuilt[COLLECTION].find_one({"_id": cp})
        live = mongo[namespace.settings.mongo_db][COLLECTION].find_one({"_id": cp})
        assert again is not None and live is not None
        assert {k: v for k, v in again.items() if k != "_version"} == {
            k: v for k, v in live.items() if k != "_version"
        }
    finally:
        mongo.drop_database(rebuilt.name)


@pytest.mark.parametrize(
    ("over", "status"),
    [
        ({"location_id": "NOWHERE"}, 2003),
        ({"connectors": [{"ocpp_connector_id": 1, "evse_uid": "E9", "connector_id": "1"}]}, 2003),
        ({"connectors": [{"ocpp_connector_id": 1, "evse_uid": "E1", "connector_id": "7"}]}, 2003),
        ({"password": "short"}, 2001),
        ({"connectors": []}, 2001),
    ],
)
async def test_refused_registrations_write_nothing(
    registry: tuple[httpx.AsyncClient, Container],
    namespace: Namespace,
    over: dict[str, Any],
    status: int,
) -> None:
    client, _ = registry
    loc = f"Ref-{uuid.uuid4().hex[:6]}"
    cp = f"CP-{uuid.uuid4().hex[:8]}"
    await _our_location(client, loc)
    resp = await client.put(f"/ops/charge-points/{cp}", json=_registration(loc, **over))
    body = resp.json()
    assert body["status_code"] == status, body
    assert PASSWORD not in resp.text
    assert (await client.get(f"/ops/charge-points/{cp}")).status_code == 404
    assert await events_of(namespace.settings, "charger.registry.v1", cp, settle_s=0.5) == []


# --- the gateway ---------------------------------------------------------------------------


@dataclass
class Harness:
    settings: Settings
    url: str
    gateway: Gateway


@pytest.fixture(scope="module")
async def gateway(namespace: Namespace) -> AsyncIterator[Harness]:
    settings = namespace.settings.model_copy(
        update={"gateway_port": free_port(), "gateway_id": "gw-it", "ocpp_heartbeat_interval_s": 5}
    )
    await ensure_topics(settings.kafka_bootstrap, settings.topic_prefix, 1)
    c = build_container(settings)
    await c.event_log.start()
    # As `ocpi-hub gateway` does: authorizations read the Tokens slice's states.
    await c.write_path.ensure_ready([tokens.SLICE, charge_points.SLICE])
    location_doc = location("GW-LOC", country_code="ZZ", party_id="HUB")
    for cp in ("GW-A", "GW-B"):
        body = parse_register(
            {
                "location_id": "GW-LOC",
                "password": PASSWORD,
                "connectors": [{"ocpp_connector_id": 1, "evse_uid": "EVSE1", "connector_id": "1"}],
            }
        )
        from producers.charge_points import hash_password

        password_hash = hash_password(PASSWORD)
        await c.write_path.write(
            charge_points.SLICE,
            cp,
            lambda state, cp=cp, body=body, password_hash=password_hash: decide_register(
                state,
                cp,
                body,
                location_doc,
                Origin(US, "it"),
                datetime.now(UTC),
                password_hash=password_hash,
            ),
        )
    gw = Gateway(
        settings=settings,
        event_log=c.event_log,
        state=GatewayState(c.redis, settings.topic_prefix),
        registry=WritePathRegistry(c.write_path),
        authorization=c.authorization,
    )
    stop = asyncio.Event()
    task = asyncio.ensure_future(run(gw, stop, CommandRunner(gw).consume))
    for _ in range(100):
        try:
            _, w = await asyncio.open_connection("127.0.0.1", settings.gateway_port)
            w.close()
            break
        except OSError:
            await asyncio.sleep(0.05)
    try:
        yield Harness(settings, f"ws://127.0.0.1:{settings.gateway_port}/ocpp", gw)
    finally:
        stop.set()
        await task
        await c.event_log.stop()
        await c.redis.aclose()
        await c.realtime.aclose()
        await c.mongo.close()
        c.mysql.dispose()


async def _refused(url: str, **kw: Any) -> int:
    with pytest.raises(InvalidStatus) as exc:
        async with connect(url, open_timeout=5, **kw):
            pass
    status: int = exc.value.response.status_code
    return status


async def test_bad_credentials_paths_and_subprotocols_are_refused_before_the_upgrade(
    gateway: Harness,
) -> None:
    url = gateway.url
    ocpp = {"subprotocols": ["ocpp1.6"]}
    assert await _refused(f"{url}/GW-A", **ocpp) == 401  # no credentials
    assert (
        await _refused(f"{url}/GW-A", additional_headers=basic("GW-A", "wrong-pass"), **ocpp) == 401
    )
    assert await _refused(f"{url}/GW-A", additional_headers=basic("GW-B", PASSWORD), **ocpp) == 401
    assert await _refused(f"{url}/NOPE", additional_headers=basic("NOPE", PASSWORD), **ocpp) == 404
    wrong_path = url.replace("/ocpp", "/other") + "/GW-A"
    assert await _refused(wrong_path, additional_headers=basic("GW-A", PASSWORD), **ocpp) == 404
    assert (
        await _refused(
            f"{url}/GW-A", additional_headers=basic("GW-A", PASSWORD), subprotocols=["ocpp2.0.1"]
        )
        == 400
    )
    # Nothing was recorded for any refused attempt, and nobody is present.
    assert await events_of(gateway.settings, "charger.connections.v1", "GW-A", settle_s=0.5) == []
    assert await gateway.gateway.state.holder("GW-A") is None


async def _open(gateway: Harness, cp: str) -> ClientConnection:
    return await connect(
        f"{gateway.url}/{cp}",
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        additional_headers=basic(cp, PASSWORD),
        open_timeout=5,
    )


async def _ask(ws: ClientConnection, frame: Any) -> list[Any]:
    await ws.send(frame if isinstance(frame, str) else json.dumps(frame))
    answer: list[Any] = json.loads(await asyncio.wait_for(ws.recv(), 5))
    return answer


async def test_malformed_frames_get_call_errors_and_connections_keep_working(
    gateway: Harness,
) -> None:
    a = await _open(gateway, "GW-A")
    b = await _open(gateway, "GW-B")
    try:
        assert await gateway.gateway.state.holder("GW-A") == "gw-it"
        assert (await _ask(a, "this is not json"))[:3] == [4, "-1", "FormatViolation"]
        assert (await _ask(a, '{"an": "object"}'))[:3] == [4, "-1", "ProtocolError"]
        assert (await _ask(a, [2, "m-1", "Heartbeat"]))[:3] == [4, "m-1", "ProtocolError"]
        assert (await _ask(a, [2, "m-2", "NoSuchAction", {}]))[:3] == [4, "m-2", "NotSupported"]
        assert (await _ask(a, [2, "m-3", "BootNotification", {}]))[0:2] == [4, "m-3"]
        unknown_connector = [
            2,
            "m-4",
            "StatusNotification",
            {"connectorId": 7, "errorCode": "NoError", "status": "Available"},
        ]
        assert await _ask(a, unknown_connector) == [3, "m-4", {}]
        bad_time = [
            2,
            "m-5",
            "StatusNotification",
            {"connectorId": 1, "errorCode": "NoError", "status": "Available", "timestamp": "noon"},
        ]
        assert (await _ask(a, bad_time))[:3] == [4, "m-5", "FormatViolation"]
        # Both connections still answer.
        for ws, uid in ((a, "h-a"), (b, "h-b")):
            answer = await _ask(ws, [2, uid, "Heartbeat", {}])
            assert answer[:2] == [3, uid] and "currentTime" in answer[2]
    finally:
        await a.close()
        await b.close()
    recorded = await events_of(gateway.settings, "charger.connections.v1", "GW-A")
    types = [e["event_type"] for e in recorded]
    assert "ChargePointConnected" in types and "ChargePointHeartbeat" in types
    assert "ChargePointDisconnected" in types
    # The unknown connector wrote no status.
    statuses = await events_of(gateway.settings, "charger.transactions.v1", "ZZ/HUB/GW-LOC")
    assert not [e for e in statuses if e["payload"].get("ocpp_connector_id") == 7]


async def test_a_second_connection_replaces_the_first(gateway: Harness) -> None:
    first = await _open(gateway, "GW-B")
    second = await _open(gateway, "GW-B")
    try:
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(first.recv(), 5)
        answer = await _ask(second, [2, "r-1", "Heartbeat", {}])
        assert answer[:2] == [3, "r-1"]
        assert await gateway.gateway.state.holder("GW-B") == "gw-it"
    finally:
        await second.close()
    for _ in range(50):
        if await gateway.gateway.state.holder("GW-B") is None:
            break
        await asyncio.sleep(0.1)
    assert await gateway.gateway.state.holder("GW-B") is None


async def test_a_full_gateway_refuses_new_chargers_but_lets_its_own_reconnect(
    gateway: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = await _open(gateway, "GW-A")
    try:
        answer = await _ask(held, [2, "f-1", "Heartbeat", {}])
        assert answer[:2] == [3, "f-1"]
        full = gateway.settings.model_copy(update={"gateway_max_connections": 1})
        monkeypatch.setattr(gateway.gateway, "settings", full)
        # Another charger, even with the right credentials: 503, nothing recorded.
        before = await events_of(gateway.settings, "charger.connections.v1", "GW-B", settle_s=0.5)
        assert (
            await _refused(
                f"{gateway.url}/GW-B",
                additional_headers=basic("GW-B", PASSWORD),
                subprotocols=["ocpp1.6"],
            )
            == 503
        )
        after = await events_of(gateway.settings, "charger.connections.v1", "GW-B", settle_s=0.5)
        assert after == before
        # The charger it holds may still reconnect (a replacement, not one more).
        again = await _open(gateway, "GW-A")
        held = again
        answer = await _ask(again, [2, "f-2", "Heartbeat", {}])
        assert answer[:2] == [3, "f-2"]
    finally:
        await held.close()


class ReservingCharger(ChargePoint):  # type: ignore[misc]
    """Accepts ReserveNow; rejects CancelReservation of a reservation id it
    does not hold (OCPP 1.6: Rejected = no such reservation)."""

    def __init__(self, cp_id: str, connection: Any) -> None:
        super().__init__(cp_id, connection, response_timeout=10)
        self.held: set[int] = set()

    @on(Action.reserve_now)  # type: ignore[misc]
    async def on_reserve_now(self, reservation_id: int, **_: Any) -> Any:
        self.held.add(reservation_id)
        return call_result.ReserveNow(status="Accepted")

    @on(Action.cancel_reservation)  # type: ignore[misc]
    async def on_cancel_reservation(self, reservation_id: int) -> Any:
        if reservation_id in self.held:
            self.held.discard(reservation_id)
            return call_result.CancelReservation(status="Accepted")
        return call_result.CancelReservation(status="Rejected")


def _command(command: str, request: dict[str, Any], cp: str, **target: Any) -> CommandAccepted:
    now = datetime.now(UTC)
    command_id = f"IT-{uuid.uuid4().hex[:10]}"
    return CommandAccepted(
        event_id=uuid.uuid4(),
        aggregate_key=command_id,
        occurred_at=now,
        recorded_at=now,
        source=US,
        correlation_id=command_id,
        payload=CommandAcceptedPayload(
            command_id=command_id,
            command=command,
            sender=Party(country_code="NL", party_id="PEE"),
            partner_id="PEE",
            response_url="https://emsp.example.com/r",
            request={"response_url": "https://emsp.example.com/r", **request},
            target=CommandTarget(
                country_code="ZZ",
                party_id="HUB",
                location_id="GW-LOC",
                charge_point_id=cp,
                **target,
            ),
            timeout_s=15,
            deadline=now + timedelta(seconds=15),
            at=now,
        ),
    )


async def _answer(settings: Settings, command_id: str) -> dict[str, Any]:
    for _ in range(40):
        found = [
            e
            for e in await events_of(settings, "ocpi.commands.v1", command_id, settle_s=0.5)
            if e["event_type"] == "ChargerCommandAnswered"
        ]
        if found:
            return found[0]
    raise AssertionError(f"no answer to {command_id}")


async def test_reservations_at_the_charger_become_charger_facts(gateway: Harness) -> None:
    settings = gateway.settings
    log = gateway.gateway.event_log
    ws = await _open(gateway, "GW-A")
    charger = ReservingCharger("GW-A", ws)
    task = asyncio.ensure_future(charger.start())
    reservation_id = int(uuid.uuid4().int % 1_000_000)
    card = token(f"R{uuid.uuid4().hex[:6].upper()}", country_code="NL", party_id="PEE")
    try:
        await charger.call(call.Heartbeat())
        reserve = _command(
            "RESERVE_NOW",
            {
                "token": card,
                "expiry_date": (datetime.now(UTC) + timedelta(hours=1)).strftime(
                    "%Y-%m-%dT%H:%M:%SZ"
                ),
                "reservation_id": "RES-1",
                "location_id": "GW-LOC",
                "evse_uid": "EVSE1",
            },
            "GW-A",
            evse_uid="EVSE1",
            ocpp_connector_id=1,
            ocpp_reservation_id=reservation_id,
        )
        await log.append([reserve])
        answer = await _answer(settings, reserve.payload.command_id)
        assert answer["payload"]["result"] == "ACCEPTED"
        assert charger.held == {reservation_id}

        facts = await events_of(settings, "charger.transactions.v1", "ZZ/HUB/GW-LOC")
        [made] = [
            e
            for e in facts
            if e["event_type"] == "ReservationMade" and e["payload"]["token"]["uid"] == card["uid"]
        ]
        assert (made["payload"]["evse_uid"], made["payload"]["connector_id"]) == ("EVSE1", "1")

        # The reserved driver arrives: the transaction goes on in the
        # reservation's session, authorized by the command.
        started = await charger.call(
            call.StartTransaction(
                connector_id=1,
                id_tag=card["uid"],
                meter_start=100,
                timestamp=datetime.now(UTC).isoformat(),
                reservation_id=reservation_id,
            )
        )
        assert started.id_tag_info["status"] == "Accepted"
        facts = await events_of(settings, "charger.transactions.v1", "ZZ/HUB/GW-LOC")
        [tx] = [
            e
            for e in facts
            if e["event_type"] == "TransactionStarted"
            and e["payload"]["transaction_id"] == str(started.transaction_id)
        ]
        assert tx["payload"]["session_id"] == made["payload"]["session_id"]
        assert tx["payload"]["auth_method"] == "COMMAND"

        # Cancelling a reservation the charger does not hold.
        cancel = _command(
            "CANCEL_RESERVATION",
            {"reservation_id": "RES-2"},
            "GW-A",
            ocpp_reservation_id=reservation_id + 1,
        )
        await log.append([cancel])
        answer = await _answer(settings, cancel.payload.command_id)
        assert answer["payload"]["result"] == "UNKNOWN_RESERVATION"
    finally:
        await ws.close()
        task.cancel()


async def test_a_start_naming_an_expired_reservation_is_a_session_of_its_own(
    gateway: Harness,
) -> None:
    """Past its expiry a reservation's session ends (docs/adr/0021), so a
    charger starting on it after that must not continue that session."""
    settings = gateway.settings
    ws = await _open(gateway, "GW-A")
    charger = ReservingCharger("GW-A", ws)
    task = asyncio.ensure_future(charger.start())
    reservation_id = int(uuid.uuid4().int % 1_000_000)
    card = token(f"R{uuid.uuid4().hex[:6].upper()}", country_code="NL", party_id="PEE")
    expiry = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    try:
        reserve = _command(
            "RESERVE_NOW",
            {
                "token": card,
                "expiry_date": expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "reservation_id": "RES-EXP",
                "location_id": "GW-LOC",
                "evse_uid": "EVSE1",
            },
            "GW-A",
            evse_uid="EVSE1",
            ocpp_connector_id=1,
            ocpp_reservation_id=reservation_id,
        )
        await gateway.gateway.event_log.append([reserve])
        answer = await _answer(settings, reserve.payload.command_id)
        assert answer["payload"]["result"] == "ACCEPTED"
        await asyncio.sleep(max((expiry - datetime.now(UTC)).total_seconds(), 0) + 0.5)
        started = await charger.call(
            call.StartTransaction(
                connector_id=1,
                id_tag=card["uid"],
                meter_start=100,
                timestamp=datetime.now(UTC).isoformat(),
                reservation_id=reservation_id,
            )
        )
        # The token was sent in a command minutes ago: still accepted.
        assert started.id_tag_info["status"] == "Accepted"
        facts = await events_of(settings, "charger.transactions.v1", "ZZ/HUB/GW-LOC")
        [made] = [
            e
            for e in facts
            if e["event_type"] == "ReservationMade" and e["payload"]["token"]["uid"] == card["uid"]
        ]
        [tx] = [
            e
            for e in facts
            if e["event_type"] == "TransactionStarted"
            and e["payload"]["transaction_id"] == str(started.transaction_id)
        ]
        assert tx["payload"]["session_id"] != made["payload"]["session_id"]
    finally:
        await ws.close()
        task.cancel()


async def test_an_unknown_id_tag_starts_nothing_we_record(gateway: Harness) -> None:
    ws = await _open(gateway, "GW-B")
    stranger = f"X{uuid.uuid4().hex[:8].upper()}"
    try:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        start = {"connectorId": 1, "idTag": stranger, "meterStart": 0, "timestamp": now}
        answer = await _ask(ws, [2, "s-1", "StartTransaction", start])
        assert answer[:2] == [3, "s-1"]
        assert answer[2]["idTagInfo"] == {"status": "Invalid"}
        txid = answer[2]["transactionId"]
        # The charger stops (StopTransactionOnInvalidId): answered, ignored.
        stop = {"transactionId": txid, "meterStop": 10, "timestamp": now, "reason": "DeAuthorized"}
        assert (await _ask(ws, [2, "s-2", "StopTransaction", stop]))[:2] == [3, "s-2"]
    finally:
        await ws.close()
    facts = await events_of(gateway.settings, "charger.transactions.v1", "ZZ/HUB/GW-LOC")
    assert not [e for e in facts if e["payload"].get("transaction_id") == str(txid)]


# --- several gateway processes --------------------------------------------------------


class UnlockingCharger(ChargePoint):  # type: ignore[misc]
    """Counts the UnlockConnector calls it gets and unlocks."""

    def __init__(self, cp_id: str, connection: Any) -> None:
        super().__init__(cp_id, connection, response_timeout=10)
        self.unlocks: list[int] = []

    @on(Action.unlock_connector)  # type: ignore[misc]
    async def on_unlock_connector(self, connector_id: int) -> Any:
        self.unlocks.append(connector_id)
        return call_result.UnlockConnector(status="Unlocked")


async def test_with_two_gateways_only_the_holder_of_a_connection_executes_its_command(
    gateway: Harness,
) -> None:
    """Two gateway processes (here two servers with their own gateway id,
    port and consumer group) read every command; each charger gets its
    command once, from the gateway that holds it, and each command is
    answered once."""
    settings2 = gateway.settings.model_copy(
        update={"gateway_port": free_port(), "gateway_id": "gw-it-2"}
    )
    first = gateway.gateway
    second = Gateway(
        settings=settings2,
        event_log=first.event_log,
        state=first.state,
        registry=first.registry,
        authorization=first.authorization,
    )
    stop = asyncio.Event()
    served = asyncio.ensure_future(run(second, stop, CommandRunner(second).consume))
    other = Harness(settings2, f"ws://127.0.0.1:{settings2.gateway_port}/ocpp", second)
    chargers: dict[str, UnlockingCharger] = {}
    tasks = []
    try:
        for _ in range(100):
            try:
                _, w = await asyncio.open_connection("127.0.0.1", settings2.gateway_port)
                w.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        for cp, harness in (("GW-A", gateway), ("GW-B", other)):
            ws = await _open(harness, cp)
            chargers[cp] = UnlockingCharger(cp, ws)
            tasks.append(asyncio.ensure_future(chargers[cp].start()))
            await chargers[cp].call(call.Heartbeat())
        assert await first.state.holder("GW-A") == "gw-it"
        assert await first.state.holder("GW-B") == "gw-it-2"
        request = {"location_id": "GW-LOC", "evse_uid": "EVSE1", "connector_id": "1"}
        commands = {
            cp: _command("UNLOCK_CONNECTOR", request, cp, ocpp_connector_id=1)
            for cp in ("GW-A", "GW-B")
        }
        await first.event_log.append(list(commands.values()))
        for cp, command in commands.items():
            answer = await _answer(gateway.settings, command.payload.command_id)
            assert answer["payload"]["charge_point_id"] == cp
            assert answer["payload"]["result"] == "ACCEPTED"
        # Both consumers have read both commands by now; nothing more comes.
        for cp, command in commands.items():
            answers = [
                e
                for e in await events_of(
                    gateway.settings, "ocpi.commands.v1", command.payload.command_id, settle_s=1.0
                )
                if e["event_type"] == "ChargerCommandAnswered"
            ]
            assert len(answers) == 1, (cp, answers)
            assert chargers[cp].unlocks == [1]
    finally:
        for task in tasks:
            task.cancel()
        for charger in chargers.values():
            await charger._connection.close()
        stop.set()
        await served


async def test_a_failed_command_consumer_starts_again_and_chargers_stay_connected(
    gateway: Harness,
) -> None:
    """Issue 12: the command consumer failing (here its first run raises
    what aiokafka raises when the broker is away) no longer ends the gateway:
    the consumer starts again with backoff, a charger connected before the
    failure keeps its connection, and a command afterwards reaches it."""
    from aiokafka.errors import KafkaConnectionError

    settings3 = gateway.settings.model_copy(
        update={
            "gateway_port": free_port(),
            "gateway_id": "gw-it-3",
            "restart_initial_s": 0.2,
            "restart_max_s": 0.5,
        }
    )
    first = gateway.gateway
    third = Gateway(
        settings=settings3,
        event_log=first.event_log,
        state=first.state,
        registry=first.registry,
        authorization=first.authorization,
    )
    runner = CommandRunner(third)
    fail_now = asyncio.Event()
    consuming_again = asyncio.Event()
    runs = 0

    async def consume() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            await fail_now.wait()
            raise KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 9092)]")
        consuming_again.set()
        await runner.consume()

    stop = asyncio.Event()
    served = asyncio.ensure_future(run(third, stop, consume))
    harness = Harness(settings3, f"ws://127.0.0.1:{settings3.gateway_port}/ocpp", third)
    charger: UnlockingCharger | None = None
    listening: asyncio.Future[Any] | None = None
    try:
        for _ in range(100):
            try:
                _, w = await asyncio.open_connection("127.0.0.1", settings3.gateway_port)
                w.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        ws = await _open(harness, "GW-B")
        charger = UnlockingCharger("GW-B", ws)
        listening = asyncio.ensure_future(charger.start())
        await charger.call(call.Heartbeat())
        fail_now.set()
        await asyncio.wait_for(consuming_again.wait(), 5.0)
        assert not served.done()
        await charger.call(call.Heartbeat())  # the same connection, still served
        request = {"location_id": "GW-LOC", "evse_uid": "EVSE1", "connector_id": "1"}
        command = _command("UNLOCK_CONNECTOR", request, "GW-B", ocpp_connector_id=1)
        await first.event_log.append([command])
        answer = await _answer(gateway.settings, command.payload.command_id)
        assert answer["payload"]["charge_point_id"] == "GW-B"
        assert answer["payload"]["result"] == "ACCEPTED"
        assert 1 in charger.unlocks
        assert runs == 2
    finally:
        if listening is not None:
            listening.cancel()
        if charger is not None:
            await charger._connection.close()
        stop.set()
        await served
