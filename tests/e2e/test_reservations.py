"""Reservations of our chargers end when they expire, end to end
(docs/adr/0021): a registered eMSP (a stub OCPI party in this process) POSTs
RESERVE_NOW to our Commands receiver; the running platform's OCPP gateway
passes it to a simulated charger (the ``ocpp`` library's ChargePoint as a
client), which accepts. Our session is in RESERVATION and the EVSE RESERVED.
A second RESERVE_NOW with the same reservation id replaces it with a later
expiry: the same session goes on and the first expiry ends nothing. After
the second expiry the session is COMPLETED, the EVSE AVAILABLE again, and
exactly one ``ReservationEnded(EXPIRED)`` is on the topic. A reservation that
expires while the processors are down ends once they are back.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
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

from tests.e2e.conftest import OCPI_HUB, ROOT, Platform, auth, cli_json, ops_auth, wait_for_log
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


@dataclass
class Site:
    """One of our locations with a registered charge point, connected as a
    simulated charger that accepts reservations."""

    platform: Platform
    client: httpx.AsyncClient
    charger: ReservingCharger
    loc: str
    reservation_id: str

    def sessions(self, status: str | None = None) -> Callable[[], Awaitable[list[Any]]]:
        """Our sessions at the location (in that status) in the view."""
        p = self.platform

        async def find() -> list[Any]:
            query: dict[str, Any] = {"session.location_id": self.loc}
            if status:
                query["session.status"] = status

            def read() -> list[Any]:
                with MongoClient(p.env["OCPI_HUB_MONGO_URL"]) as mongo:
                    coll = mongo[p.namespace.name]["sessions"]
                    return [d["session"] for d in coll.find(query)]

            return await asyncio.to_thread(read)

        return find


@asynccontextmanager
async def site(platform: Platform) -> AsyncIterator[Site]:
    tag = uuid.uuid4().hex[:6].upper()
    loc, cp_id = f"RSV-{tag}", f"CP-RSV-{tag}"
    async with httpx.AsyncClient(
        base_url=platform.base_url, timeout=20, headers=ops_auth(platform.base_url)
    ) as client:
        place = location(
            loc,
            country_code="ZZ",
            party_id="HUB",
            evses=[evse("EVSE1", status="UNKNOWN", connectors=[connector("1")])],
        )
        await _ok(await client.put(f"/ops/locations/{loc}", json=place), 201)
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
            yield Site(platform, client, charger, loc, f"R-{tag}")
        finally:
            await ws.close()
            task.cancel()


async def _reserved(
    s: Site, emsp: tuple[PeerStub, dict[str, str]], expiry: datetime
) -> dict[str, Any]:
    """RESERVE_NOW until ``expiry``, accepted by the charger: the CommandResult
    posted, the session in RESERVATION, the EVSE RESERVED."""
    stub, headers = emsp
    url = f"{stub.base_url}/commands/RESERVE_NOW/{uuid.uuid4().hex}"
    await _reserve(s.client, headers, url, s.loc, s.reservation_id, expiry)
    [result] = await until(
        _callbacks(stub, url.removeprefix(stub.base_url)), "the CommandResult of RESERVE_NOW"
    )
    assert result == {"result": "ACCEPTED"}
    found: list[dict[str, Any]] = await until(s.sessions("RESERVATION"), "session RESERVATION")
    await until(lambda: _is(s.client, s.loc, "RESERVED"), "EVSE RESERVED")
    return found[0]


def _at(expiry: datetime) -> str:
    return expiry.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_an_unused_reservation_expires_once_and_frees_the_evse(
    platform: Platform, emsp: tuple[PeerStub, dict[str, str]]
) -> None:
    async with site(platform) as s:
        # Reserve until a little ahead.
        first_expiry = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=12)
        reserved = await _reserved(s, emsp, first_expiry)
        assert reserved["auth_method"] == "COMMAND"
        assert reserved["cdr_token"]["uid"] == "RSV-DRIVER"
        assert reserved["evse_uid"] == "EVSE1"

        # The same reservation id again, with a later expiry: replaced.
        second_expiry = first_expiry + timedelta(seconds=15)
        assert datetime.now(UTC) < first_expiry  # the replace comes before the expiry
        assert (await _reserved(s, emsp, second_expiry))["id"] == reserved["id"]
        assert len(s.charger.reservations) == 2
        assert len({r["reservation_id"] for r in s.charger.reservations}) == 1

        # Past the first expiry (and its grace): nothing ended.
        wait = (first_expiry - datetime.now(UTC)).total_seconds() + GRACE_S + 3
        await asyncio.sleep(max(wait, 0))
        assert [x["status"] for x in await s.sessions()()] == ["RESERVATION"]
        assert await _is(s.client, s.loc, "RESERVED")

        # Past the second: the session ended, the EVSE free again.
        [done] = await until(s.sessions("COMPLETED"), "the expired session COMPLETED", 90)
        assert done["id"] == reserved["id"]  # one session throughout
        assert done["end_date_time"] == _at(second_expiry)
        [period] = done["charging_periods"]
        assert [d["type"] for d in period["dimensions"]] == ["RESERVATION_TIME"]
        await until(lambda: _is(s.client, s.loc, "AVAILABLE"), "EVSE AVAILABLE again")

    events = await _reservation_events(platform, s.loc)
    ended = [e for e in events if e["event_type"] == "ReservationEnded"]
    assert len(ended) == 1, ended
    assert ended[0]["payload"]["reason"] == "EXPIRED"
    assert ended[0]["payload"]["session_id"] == reserved["id"]
    made = [e for e in events if e["event_type"] == "ReservationMade"]
    assert [e["payload"]["session_id"] for e in made] == [reserved["id"]] * 2


def _stop_processors(platform: Platform) -> None:
    proc = platform.processes["processors"]
    proc.terminate()
    proc.wait(timeout=30)


def _start_processors(platform: Platform, log: Path) -> None:
    with log.open("wb") as out:
        platform.processes["processors"] = subprocess.Popen(
            [OCPI_HUB, "processors"], env=platform.env, cwd=ROOT, stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip


async def test_a_reservation_that_expires_while_processors_are_down_ends_once_after(
    platform: Platform, emsp: tuple[PeerStub, dict[str, str]]
) -> None:
    """The held reservation is in the table's changelog, so the restarted
    processors still end it."""
    async with site(platform) as s:
        expiry = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=8)
        reserved = await _reserved(s, emsp, expiry)
        await asyncio.to_thread(_stop_processors, platform)
        restarted = platform.logs / f"processors-restarted-{s.loc}.log"
        try:
            wait = (expiry - datetime.now(UTC)).total_seconds() + GRACE_S + 2
            await asyncio.sleep(max(wait, 0))
            assert [x["status"] for x in await s.sessions()()] == ["RESERVATION"]
        finally:
            _start_processors(platform, restarted)
        await asyncio.to_thread(wait_for_log, restarted, "Worker ready", timeout=90)
        [done] = await until(s.sessions("COMPLETED"), "the expired session COMPLETED", 90)
        assert done["id"] == reserved["id"]
        assert done["end_date_time"] == _at(expiry)
        await until(lambda: _is(s.client, s.loc, "AVAILABLE"), "EVSE AVAILABLE again")
    ended = [
        e
        for e in await _reservation_events(platform, s.loc)
        if e["event_type"] == "ReservationEnded"
    ]
    assert [e["payload"]["reason"] for e in ended] == ["EXPIRED"]
