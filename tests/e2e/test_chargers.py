"""Our own chargers over OCPP 1.6J, end to end on the running platform.

Simulated chargers are the ``ocpp`` library's ChargePoint used as a client
over ``websockets``. A charge point is registered through ops at one of our
locations; it boots, reports its connector, authorizes one of our RFID
tokens, charges and stops: our OCPI session goes ACTIVE then COMPLETED with
the metered kWh, a CDR is issued, and the EVSE status follows the charger
(OUTOFORDER while faulted during the charge). Commands: a CommandAccepted
on ``ocpi.commands.v1`` (standing in for the Commands receiver) reaches the
connected charger as RemoteStartTransaction and its answer is recorded; a
charger that never answers gets nothing recorded.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action, RemoteStartStopStatus
from pymongo import MongoClient
from websockets.asyncio.client import ClientConnection, connect

from ocpi_hub.settings import Settings
from producers.log import KafkaEventLog
from schemas.events import CommandAccepted, Party
from schemas.events.commands import CommandAcceptedPayload, CommandTarget
from tests.e2e.conftest import Platform, ops_auth, wait_for_log
from tests.ocpi_objects import connector, evse, location
from tests.tariff_objects import tariff_json
from tests.token_objects import token

PASSWORD = "e2e-charger-pass"


class SimulatedCharger(ChargePoint):  # type: ignore[misc]
    """Answers RemoteStartTransaction with Accepted (and remembers it), or
    never answers when ``silent``."""

    def __init__(self, cp_id: str, connection: Any, *, silent: bool = False) -> None:
        super().__init__(cp_id, connection, response_timeout=10)
        self.silent = silent
        self.remote_starts: list[dict[str, Any]] = []

    @on(Action.remote_start_transaction)  # type: ignore[misc]
    async def on_remote_start(self, id_tag: str, **extra: Any) -> Any:
        self.remote_starts.append({"id_tag": id_tag, **extra})
        if self.silent:
            await asyncio.sleep(3600)
        return call_result.RemoteStartTransaction(status=RemoteStartStopStatus.accepted)


def _settings(platform: Platform) -> Settings:
    return platform.namespace.settings


async def until(check: Callable[[], Awaitable[Any]], what: str, within_s: float = 60) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    last: Any = None
    while loop.time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}; last seen: {last!r}")


async def _ok(resp: httpx.Response, *http: int) -> dict[str, Any]:
    assert resp.status_code in (http or (200,)), resp.text
    body: dict[str, Any] = resp.json()
    assert body["status_code"] == 1000, body
    return body


async def _charger(
    platform: Platform, cp_id: str, *, silent: bool = False
) -> tuple[SimulatedCharger, ClientConnection, asyncio.Task[None]]:
    auth = base64.b64encode(f"{cp_id}:{PASSWORD}".encode()).decode()
    ws = await connect(
        f"{platform.gateway_url}/{cp_id}",
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        additional_headers={"Authorization": f"Basic {auth}"},
        open_timeout=10,
    )
    charger = SimulatedCharger(cp_id, ws, silent=silent)
    task = asyncio.ensure_future(charger.start())
    return charger, ws, task


async def _register(
    client: httpx.AsyncClient, cp_id: str, loc: str, evse_uid: str = "EVSE1"
) -> None:
    body = {
        "location_id": loc,
        "password": PASSWORD,
        "connectors": [{"ocpp_connector_id": 1, "evse_uid": evse_uid, "connector_id": "1"}],
    }
    await _ok(await client.put(f"/ops/charge-points/{cp_id}", json=body), 201)


async def _evse_status(client: httpx.AsyncClient, loc: str) -> str:
    data = (await client.get(f"/ops/locations/{loc}")).json().get("data") or {}
    status: str = data["evses"][0]["status"] if data.get("evses") else ""
    return status


def _ts(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_a_charger_charges_one_of_our_tokens_end_to_end(platform: Platform) -> None:
    tag = uuid.uuid4().hex[:6].upper()
    loc, tid, uid, cp_id = f"OCPP-{tag}", f"OT-{tag}", f"RF{tag}", f"CP-{tag}"
    sessions = MongoClient(platform.env["OCPI_HUB_MONGO_URL"])[platform.namespace.name]["sessions"]
    async with httpx.AsyncClient(
        base_url=platform.base_url, timeout=20, headers=ops_auth(platform.base_url)
    ) as client:
        priced = tariff_json(tid, country_code="ZZ", party_id="HUB")
        headers = {"content-type": "application/json"}
        resp = await client.put(f"/ops/tariffs/{tid}", content=priced, headers=headers)
        await _ok(resp, 200, 201)
        site = location(
            loc,
            country_code="ZZ",
            party_id="HUB",
            evses=[evse("EVSE1", status="UNKNOWN", connectors=[connector("1", tariff_ids=[tid])])],
        )
        await _ok(await client.put(f"/ops/locations/{loc}", json=site), 201)
        ours = token(uid, country_code="ZZ", party_id="HUB", whitelist="ALLOWED")
        await _ok(await client.put(f"/ops/tokens/{uid}", json=ours), 201)
        await _register(client, cp_id, loc)
        got = await _ok(await client.get(f"/ops/charge-points/{cp_id}"))
        assert got["data"]["registered"] is True and "password_hash" not in got["data"]

        charger, ws, task = await _charger(platform, cp_id)
        try:
            boot = await charger.call(
                call.BootNotification(charge_point_model="Sim-1", charge_point_vendor="Tests")
            )
            assert boot.status == "Accepted" and boot.interval > 0

            await charger.call(
                call.StatusNotification(connector_id=1, error_code="NoError", status="Available")
            )
            await until(lambda: _is(client, loc, "AVAILABLE"), "EVSE AVAILABLE")

            authorized = await charger.call(call.Authorize(id_tag=uid))
            assert authorized.id_tag_info["status"] == "Accepted"
            unknown = await charger.call(call.Authorize(id_tag=f"NOBODY{tag}"))
            assert unknown.id_tag_info["status"] == "Invalid"

            start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
            started = await charger.call(
                call.StartTransaction(
                    connector_id=1, id_tag=uid, meter_start=12_000, timestamp=_ts(start)
                )
            )
            assert started.id_tag_info["status"] == "Accepted"
            txid = started.transaction_id
            await charger.call(
                call.StatusNotification(connector_id=1, error_code="NoError", status="Charging")
            )

            def session(status: str) -> Callable[[], Awaitable[dict[str, Any] | None]]:
                async def find() -> dict[str, Any] | None:
                    doc = await asyncio.to_thread(
                        sessions.find_one, {"session.location_id": loc, "session.status": status}
                    )
                    return doc["session"] if doc else None

                return find

            active = await until(session("ACTIVE"), "our session ACTIVE")
            assert active["cdr_token"]["uid"] == uid
            await until(lambda: _is(client, loc, "CHARGING"), "EVSE CHARGING")

            energy = {"measurand": "Energy.Active.Import.Register", "unit": "kWh", "value": "15.5"}
            power = {"measurand": "Power.Active.Import", "unit": "W", "value": "7000"}
            at_15 = start + timedelta(minutes=15)
            await charger.call(
                call.MeterValues(
                    connector_id=1,
                    transaction_id=txid,
                    meter_value=[
                        {
                            "timestamp": _ts(at_15),
                            "sampledValue": [energy, power],
                        }
                    ],
                )
            )
            await charger.call(
                call.StatusNotification(
                    connector_id=1, error_code="GroundFailure", status="Faulted"
                )
            )
            await until(lambda: _is(client, loc, "OUTOFORDER"), "EVSE OUTOFORDER while faulted")
            await charger.call(
                call.StatusNotification(connector_id=1, error_code="NoError", status="Charging")
            )
            await until(lambda: _is(client, loc, "CHARGING"), "EVSE back to CHARGING")

            stopped = await charger.call(
                call.StopTransaction(
                    meter_stop=20_250,
                    timestamp=_ts(start + timedelta(minutes=30)),
                    transaction_id=txid,
                    reason="EVDisconnected",
                    id_tag=uid,
                )
            )
            assert stopped.id_tag_info["status"] == "Accepted"
            await charger.call(
                call.StatusNotification(connector_id=1, error_code="NoError", status="Available")
            )
            done = await until(session("COMPLETED"), "our session COMPLETED")
            assert Decimal(str(done["kwh"])) == Decimal("8.25")
            assert done["id"] == active["id"]
            await until(lambda: _is(client, loc, "AVAILABLE"), "EVSE AVAILABLE after the charge")

            async def cdr() -> dict[str, Any] | None:
                resp = await client.get(f"/ops/cdrs/{done['id']}")
                data: dict[str, Any] | None = (
                    resp.json().get("data") if resp.status_code == 200 else None
                )
                return data

            issued = await until(cdr, "our CDR")
            assert Decimal(str(issued["total_energy"])) == Decimal("8.25")
        finally:
            await ws.close()
            task.cancel()


async def _is(client: httpx.AsyncClient, loc: str, status: str) -> bool:
    return await _evse_status(client, loc) == status


def _accepted(
    platform: Platform, cp_id: str, loc: str, uid: str, *, timeout_s: int
) -> CommandAccepted:
    now = datetime.now(UTC)
    command_id = f"CMD-{uuid.uuid4().hex[:10]}"
    request = {
        "response_url": f"https://emsp.example.com/commands/{command_id}",
        "token": token(uid, country_code="NL", party_id="PEE", whitelist="NEVER"),
        "location_id": loc,
        "evse_uid": "EVSE1",
        "connector_id": "1",
        "authorization_reference": f"REF-{command_id[-8:]}",
    }
    us = Party(country_code="ZZ", party_id="HUB")
    return CommandAccepted(
        event_id=uuid.uuid4(),
        aggregate_key=command_id,
        occurred_at=now,
        recorded_at=now,
        source=us,
        correlation_id=command_id,
        payload=CommandAcceptedPayload(
            command_id=command_id,
            command="START_SESSION",
            sender=Party(country_code="NL", party_id="PEE"),
            partner_id="PEE-TEST",
            response_url=request["response_url"],
            request=request,
            target=CommandTarget(
                country_code="ZZ",
                party_id="HUB",
                location_id=loc,
                evse_uid="EVSE1",
                connector_id="1",
                charge_point_id=cp_id,
                ocpp_connector_id=1,
            ),
            timeout_s=timeout_s,
            deadline=now + timedelta(seconds=timeout_s),
            at=now,
        ),
    )


async def _answers(settings: Settings, command_id: str) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(
        settings.topic("ocpi.commands.v1"),
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found = []
    try:
        while batches := await consumer.getmany(timeout_ms=1500):
            for messages in batches.values():
                for m in messages:
                    event = json.loads(m.value or b"{}")
                    if (
                        event.get("event_type") == "ChargerCommandAnswered"
                        and event["payload"]["command_id"] == command_id
                    ):
                        found.append(event)
    finally:
        await consumer.stop()
    return found


async def test_commands_reach_the_connected_charger_and_its_answer_is_recorded(
    platform: Platform,
) -> None:
    tag = uuid.uuid4().hex[:6].upper()
    loc, cp_id, quiet_id, uid = f"CMDL-{tag}", f"CPC-{tag}", f"CPQ-{tag}", f"RS{tag}"
    settings = _settings(platform)
    log = KafkaEventLog(settings.kafka_bootstrap, settings.topic_prefix)
    await log.start()
    sessions = MongoClient(platform.env["OCPI_HUB_MONGO_URL"])[platform.namespace.name]["sessions"]
    async with httpx.AsyncClient(
        base_url=platform.base_url, timeout=20, headers=ops_auth(platform.base_url)
    ) as client:
        site = location(
            loc,
            country_code="ZZ",
            party_id="HUB",
            evses=[evse("EVSE1"), evse("EVSE2")],
        )
        await _ok(await client.put(f"/ops/locations/{loc}", json=site), 201)
        await _register(client, cp_id, loc)
        await _register(client, quiet_id, loc, "EVSE2")
        charger, ws, task = await _charger(platform, cp_id)
        quiet, quiet_ws, quiet_task = await _charger(platform, quiet_id, silent=True)
        try:
            # Both connections are held by the gateway before commands come.
            await charger.call(call.Heartbeat())
            await quiet.call(call.Heartbeat())

            accepted = _accepted(platform, cp_id, loc, uid, timeout_s=20)
            await log.append([accepted])
            command_id = accepted.payload.command_id
            [answer] = await until(lambda: _answers(settings, command_id), "the charger's answer")
            assert answer["payload"]["result"] == "ACCEPTED"
            assert answer["payload"]["charger_status"] == "Accepted"
            assert charger.remote_starts == [{"id_tag": uid, "connector_id": 1}]

            # The command's token is accepted at this charger without asking
            # anyone (mod_commands: sent in a START_SESSION in the last 15 min).
            authorized = await charger.call(call.Authorize(id_tag=uid))
            assert authorized.id_tag_info["status"] == "Accepted"
            elsewhere = await quiet.call(call.Authorize(id_tag=uid))
            assert elsewhere.id_tag_info["status"] == "Invalid"

            # The charger starts for the remote start: a session by COMMAND
            # with the command's token and authorization reference.
            started = await charger.call(
                call.StartTransaction(
                    connector_id=1,
                    id_tag=uid,
                    meter_start=0,
                    timestamp=_ts(datetime.now(UTC).replace(microsecond=0)),
                )
            )
            assert started.id_tag_info["status"] == "Accepted"

            async def commanded() -> dict[str, Any] | None:
                doc = await asyncio.to_thread(sessions.find_one, {"session.location_id": loc})
                return doc["session"] if doc else None

            session = await until(commanded, "the remotely started session")
            assert session["auth_method"] == "COMMAND"
            assert session["cdr_token"]["uid"] == uid
            assert (
                session["authorization_reference"]
                == accepted.payload.request["authorization_reference"]
            )

            # A charger that never answers: the gateway gives up at the
            # deadline and records nothing.
            unanswered = _accepted(platform, quiet_id, loc, f"Q{uid}", timeout_s=3)
            await log.append([unanswered])
            await asyncio.to_thread(
                wait_for_log,
                platform.logs / "gateway.log",
                "command_unanswered",
                unanswered.payload.command_id,
            )
            assert len(quiet.remote_starts) == 1
            assert await _answers(settings, unanswered.payload.command_id) == []
        finally:
            await log.stop()
            await ws.close()
            await quiet_ws.close()
            task.cancel()
            quiet_task.cancel()
