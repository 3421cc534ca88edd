"""Reservations of our chargers end when they expire, end to end
(docs/adr/0021): a registered eMSP (a stub OCPI party in this process) POSTs
RESERVE_NOW to our Commands receiver; the running platform's OCPP gateway
passes it to a simulated charger (the ``ocpp`` library's ChargePoint as a
client), which accepts. Our session is in RESERVATION and the EVSE RESERVED.
A second RESERVE_NOW with the same reservation id replaces it with a later
expiry: the same session goes on and the first expiry ends nothing. After
the second expiry the session is COMPLETED, the EVSE AVAILABLE again, and
exactly one ``ReservationEnded(EXPIRED)`` is on the topic.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action, ReservationStatus
from pymongo import MongoClient
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from tests.e2e.conftest import Platform, auth, cli_json
from tests.e2e.test_chargers import PASSWORD, _is, _ok, _register, until
from tests.ocpi_objects import connector, evse, location
from tests.peer_stub import PeerStub, peer_stub
from tests.token_objects import token

RECEIVER = "/ocpi/cpo/2.2.1/commands"
# The platform's default: the expiry is stated this long after it passed.
GRACE_S = 5


class ReservingCharger(ChargePoint):  # type: ignore[misc]
    """Accepts every ReserveNow and remembers it."""

    def __init__(self, cp_id: str, connection: Any) -> None:
        super().__init__(cp_id, connection, response_timeout=10)
        self.reservations: list[dict[str, Any]] = []

    @on(Action.reserve_now)  # type: ignore[misc]
    async def on_reserve_now(self, **fields: Any) -> Any:
        self.reservations.append(fields)
        return call_result.ReserveNow(status=ReservationStatus.accepted)


@pytest.fixture(scope="module")
def emsp(platform: Platform) -> Iterator[tuple[PeerStub, dict[str, str]]]:
    """An eMSP (NL-RSV) registered with our platform: the stub and the
    Authorization header it sends us."""
    with peer_stub("NL", "RSV", role="EMSP") as stub:
        invite = cli_json(
            platform, "partners", "invite", "--country-code", "NL", "--party-id", "RSV",
            "--role", "EMSP", "--partner-id", f"RSV-{uuid.uuid4().hex[:6]}",
        )  # fmt: skip
        token_c = stub.register_with(invite["versions_url"], invite["token_a"])
        yield stub, auth(token_c)


async def _reserve(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    response_url: str,
    loc: str,
    reservation_id: str,
    expiry: datetime,
) -> dict[str, Any]:
    body = {
        "response_url": response_url,
        "token": token("RSV-DRIVER", country_code="NL", party_id="RSV"),
        "expiry_date": expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "reservation_id": reservation_id,
        "location_id": loc,
        "evse_uid": "EVSE1",
    }

    async def answered() -> dict[str, Any] | None:
        resp = await client.post(f"{RECEIVER}/RESERVE_NOW", json=body, headers=headers)
        data: dict[str, Any] = resp.json()
        # The location or the charge point may not be in the views yet.
        if data["status_code"] == 2003 or (data.get("data") or {}).get("result") == "REJECTED":
            return None
        return data

    data: dict[str, Any] = await until(answered, "RESERVE_NOW accepted")
    assert data["status_code"] == 1000, data
    assert data["data"]["result"] == "ACCEPTED", data
    return data


def _callbacks(stub: PeerStub, path: str) -> Callable[[], Awaitable[list[Any]]]:
    """The CommandResults POSTed to ``path`` so far."""

    async def posted() -> list[Any]:
        return [body for method, p, body in stub.received if method == "POST" and p == path]

    return posted


async def _reservation_events(platform: Platform, loc: str) -> list[dict[str, Any]]:
    """Every ReservationMade / ReservationEnded / ReservationExpiryPassed of
    the location on charger.transactions.v1, from the start."""
    s = platform.namespace.settings
    consumer = AIOKafkaConsumer(
        s.topic("charger.transactions.v1"),
        bootstrap_servers=s.kafka_bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[dict[str, Any]] = []
    try:
        while batches := await consumer.getmany(timeout_ms=1500):
            for messages in batches.values():
                for m in messages:
                    event = json.loads(m.value or b"{}")
                    if (
                        event.get("event_type", "").startswith("Reservation")
                        and event["payload"]["location_id"] == loc
                    ):
                        found.append(event)
    finally:
        await consumer.stop()
    return found


async def test_an_unused_reservation_expires_once_and_frees_the_evse(
    platform: Platform, emsp: tuple[PeerStub, dict[str, str]]
) -> None:
    stub, headers = emsp
    tag = uuid.uuid4().hex[:6].upper()
    loc, cp_id, reservation_id = f"RSV-{tag}", f"CP-RSV-{tag}", f"R-{tag}"
    sessions = MongoClient(platform.env["OCPI_HUB_MONGO_URL"])[platform.namespace.name]["sessions"]

    def session(status: str | None = None) -> Callable[[], Awaitable[list[dict[str, Any]]]]:
        async def find() -> list[dict[str, Any]]:
            query: dict[str, Any] = {"session.location_id": loc}
            if status:
                query["session.status"] = status
            docs = await asyncio.to_thread(lambda: list(sessions.find(query)))
            return [d["session"] for d in docs]

        return find

    async with httpx.AsyncClient(base_url=platform.base_url, timeout=20) as client:
        site = location(
            loc,
            country_code="ZZ",
            party_id="HUB",
            evses=[evse("EVSE1", status="UNKNOWN", connectors=[connector("1")])],
        )
        await _ok(await client.put(f"/ops/locations/{loc}", json=site), 201)
        await _register(client, cp_id, loc)
        basic = base64.b64encode(f"{cp_id}:{PASSWORD}".encode()).decode()

        async def connected() -> ClientConnection | None:
            try:
                return await connect(
                    f"{platform.gateway_url}/{cp_id}",
                    subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                    additional_headers={"Authorization": f"Basic {basic}"},
                    open_timeout=10,
                )
            except InvalidStatus as refused:
                # 404 until the registration is in the gateway's view.
                assert refused.response.status_code == 404, refused
                return None

        ws = await until(connected, "the gateway to know the charge point")
        charger = ReservingCharger(cp_id, ws)
        task = asyncio.ensure_future(charger.start())
        try:
            await charger.call(
                call.BootNotification(charge_point_model="Sim-1", charge_point_vendor="Tests")
            )
            await charger.call(
                call.StatusNotification(connector_id=1, error_code="NoError", status="Available")
            )
            await until(lambda: _is(client, loc, "AVAILABLE"), "EVSE AVAILABLE")

            # Reserve until a little ahead.
            first_url = f"{stub.base_url}/commands/RESERVE_NOW/{uuid.uuid4().hex}"
            first_expiry = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=12)
            await _reserve(client, headers, first_url, loc, reservation_id, first_expiry)
            first_path = first_url.removeprefix(stub.base_url)
            [result] = await until(_callbacks(stub, first_path), "the CommandResult of RESERVE_NOW")
            assert result == {"result": "ACCEPTED"}
            [reserved] = await until(session("RESERVATION"), "our session in RESERVATION")
            assert reserved["auth_method"] == "COMMAND"
            assert reserved["cdr_token"]["uid"] == "RSV-DRIVER"
            assert reserved["evse_uid"] == "EVSE1"
            await until(lambda: _is(client, loc, "RESERVED"), "EVSE RESERVED")

            # The same reservation id again, with a later expiry: replaced.
            second_url = f"{stub.base_url}/commands/RESERVE_NOW/{uuid.uuid4().hex}"
            second_expiry = first_expiry + timedelta(seconds=15)
            assert datetime.now(UTC) < first_expiry  # the replace comes before the expiry
            await _reserve(client, headers, second_url, loc, reservation_id, second_expiry)
            second_path = second_url.removeprefix(stub.base_url)
            await until(_callbacks(stub, second_path), "the replace's result")
            assert len(charger.reservations) == 2
            ids = {r["reservation_id"] for r in charger.reservations}
            assert len(ids) == 1  # the charger replaces its reservation

            # Past the first expiry (and its grace): nothing ended.
            wait = (first_expiry - datetime.now(UTC)).total_seconds() + GRACE_S + 3
            await asyncio.sleep(max(wait, 0))
            assert [s["status"] for s in await session()()] == ["RESERVATION"]
            assert await _is(client, loc, "RESERVED")

            # Past the second: the session ended, the EVSE free again.
            [done] = await until(session("COMPLETED"), "the expired session COMPLETED", 90)
            assert done["id"] == reserved["id"]  # one session throughout
            assert done["end_date_time"] == second_expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
            [period] = done["charging_periods"]
            assert [d["type"] for d in period["dimensions"]] == ["RESERVATION_TIME"]
            await until(lambda: _is(client, loc, "AVAILABLE"), "EVSE AVAILABLE again")
        finally:
            await ws.close()
            task.cancel()

    events = await _reservation_events(platform, loc)
    ended = [e for e in events if e["event_type"] == "ReservationEnded"]
    assert len(ended) == 1, ended
    assert ended[0]["payload"]["reason"] == "EXPIRED"
    assert ended[0]["payload"]["session_id"] == reserved["id"]
    made = [e for e in events if e["event_type"] == "ReservationMade"]
    assert [e["payload"]["session_id"] for e in made] == [reserved["id"]] * 2
