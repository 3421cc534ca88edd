"""A payment-terminal session from pre-authorization to CDR (OCPI 2.3.0
Payments, we as CPO; docs/adr/0047), end to end on the running platform
(api, processors, projections, push, gateway as separate processes) with a
real ``ocpp`` library charger:

1. a Payment Terminal Provider (a stub OCPI party registered with us, its
   Payments Sender recording what we send) creates its terminal on our
   Receiver; we assign our location to it through ops (the PATCH reaches
   the PTP) and the PTP reads the assignment back;
2. the PTP reads our tariff with its ``preauthorize_amount`` (what it
   reserves at its payment provider);
3. it starts the session with StartSession and its payment's
   ``authorization_reference`` (mod_payments, Transaction flow): our
   gateway sends RemoteStartTransaction, the charger starts, meters, stops;
4. the CDR we issue carries the ``invoice_reference_id`` (the terminal says
   the CPO invoices), and the PTP's financial advice confirmation for that
   reference is recorded and served back.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action, RemoteStartStopStatus
from pymongo import MongoClient
from websockets.asyncio.client import connect

from tests.cdr_objects import simple_tariff
from tests.conftest import fresh_namespace
from tests.e2e.conftest import Platform, auth, cli_json, ops_auth, running_platform
from tests.e2e.test_money_path import _dumps
from tests.ocpi_objects import connector, evse, location
from tests.peer_stub import PeerStub, peer_stub
from tests.token_objects import token

PASSWORD = "e2e-payment-pass"
PAY = "/ocpi/cpo/2.3.0/payments"
CC, PID = "ZZ", "HUB"  # our platform's party in the tests


class TerminalCharger(ChargePoint):  # type: ignore[misc]
    """A charger with a payment terminal beside it: takes remote starts."""

    def __init__(self, cp_id: str, connection: Any) -> None:
        super().__init__(cp_id, connection, response_timeout=15)
        self.remote_starts: list[dict[str, Any]] = []

    @on(Action.remote_start_transaction)  # type: ignore[misc]
    async def on_remote_start(self, id_tag: str, **extra: Any) -> Any:
        self.remote_starts.append({"id_tag": id_tag, **extra})
        return call_result.RemoteStartTransaction(status=RemoteStartStopStatus.accepted)


@dataclass
class Setup:
    platform: Platform
    stub: PeerStub
    headers: dict[str, str]  # the PTP's token at our API
    ops: dict[str, str]
    tag: str
    location_id: str
    charge_point_id: str
    tariff_id: str


@pytest.fixture(scope="module")
def setup(services: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """Our platform; a PTP registered with it (as an eMSP role: it sends
    StartSession); one of our locations, priced with a tariff that states
    ``preauthorize_amount``, with a registered charge point."""
    with (
        fresh_namespace(services) as ns,
        running_platform(ns, tmp_path_factory.mktemp("payments-logs")) as platform,
        peer_stub("DE", "PTP", role="EMSP", payments=True) as stub,
    ):
        invite = cli_json(
            platform, "partners", "invite", "--country-code", "DE", "--party-id", "PTP",
            "--role", "EMSP", "--partner-id", "PTP-1",
        )  # fmt: skip
        token_c = stub.register_with(invite["versions_url"], invite["token_a"])
        tag = uuid.uuid4().hex[:6].upper()
        loc, cp, tid = f"PAY-{tag}", f"CP-PAY-{tag}", f"TP-{tag}"
        ops = ops_auth(platform.base_url)
        base = platform.base_url
        tariff = {
            **simple_tariff(tid, country_code=CC, party_id=PID, at="2026-01-01T00:00:00Z"),
            "preauthorize_amount": Decimal("50.00"),
        }
        put = httpx.put(
            f"{base}/ops/tariffs/{tid}",
            content=_dumps(tariff),
            headers={**ops, "content-type": "application/json"},
            timeout=10,
        )
        assert put.status_code in (200, 201), put.text
        site = location(
            loc,
            country_code=CC,
            party_id=PID,
            evses=[evse("EVSE1", connectors=[connector("1", tariff_ids=[tid])])],
        )
        made = httpx.put(f"{base}/ops/locations/{loc}", json=site, headers=ops, timeout=10)
        assert made.json()["status_code"] == 1000, made.text
        body = {
            "location_id": loc,
            "password": PASSWORD,
            "connectors": [{"ocpp_connector_id": 1, "evse_uid": "EVSE1", "connector_id": "1"}],
        }
        made = httpx.put(f"{base}/ops/charge-points/{cp}", json=body, headers=ops, timeout=10)
        assert made.status_code == 201, made.text
        yield Setup(platform, stub, auth(token_c), ops, tag, loc, cp, tid)


async def _until(check: Any, what: str, within_s: float = 60) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    last: Any = None
    while loop.time() < deadline:
        last = check()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}; last seen: {last!r}")


def _ok(resp: httpx.Response, *http: int) -> Any:
    assert resp.status_code in (http or (200,)), resp.text
    assert resp.json()["status_code"] == 1000, resp.text
    return resp.json().get("data")


def _ts(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_a_payment_terminal_session_from_pre_authorization_to_cdr(setup: Setup) -> None:
    s = setup
    terminal_id = f"term-{s.tag.lower()}"
    reference = f"pp-{s.tag}-0001"
    async with (
        httpx.AsyncClient(base_url=s.platform.base_url, headers=s.headers, timeout=30) as ptp,
        httpx.AsyncClient(base_url=s.platform.base_url, headers=s.ops, timeout=30) as ops,
    ):
        # 1. The PTP creates its terminal; we assign our location to it.
        terminal = {
            "terminal_id": terminal_id,
            "customer_reference": "ZZ-HUB",
            "address": "Hauptstrasse 5",
            "city": "Berlin",
            "country": "DEU",
            "invoice_base_url": "https://invoices.example.com/ad-hoc/",
            "invoice_creator": "CPO",
            "location_ids": [],
            "last_updated": _ts(datetime.now(UTC) - timedelta(minutes=1)),
        }
        _ok(await ptp.post(f"{PAY}/terminals", json=terminal))
        assignment = {"location_ids": [s.location_id], "evse_uids": []}
        assigned = _ok(
            await ops.put(
                f"/ops/payments/terminals/PTP-1/{terminal_id}/assignment", json=assignment
            )
        )
        assert assigned["location_ids"] == [s.location_id]
        patches = [
            (m, p, b) for m, p, b in s.stub.received if p == f"/payments/terminals/{terminal_id}"
        ]
        assert [(m, b["location_ids"]) for m, _, b in patches] == [("PATCH", [s.location_id])]
        held = _ok(await ptp.get(f"{PAY}/terminals/{terminal_id}"))
        assert held["location_ids"] == [s.location_id]

        # 2. What the PTP preauthorizes: our tariff's preauthorize_amount.
        tariffs = _ok(await ptp.get("/ocpi/cpo/2.2.1/tariffs"))
        [ours] = [t for t in tariffs if t["id"] == s.tariff_id]
        assert Decimal(str(ours["preauthorize_amount"])) == Decimal("50.00")

        # 3. The driver pays at the terminal: StartSession with the reference.
        basic = base64.b64encode(f"{s.charge_point_id}:{PASSWORD}".encode()).decode()
        ws = await connect(
            f"{s.platform.gateway_url}/{s.charge_point_id}",
            subprotocols=["ocpp1.6"],  # type: ignore[list-item]
            additional_headers={"Authorization": f"Basic {basic}"},
            open_timeout=10,
        )
        charger = TerminalCharger(s.charge_point_id, ws)
        task = asyncio.ensure_future(charger.start())
        try:
            await charger.call(
                call.BootNotification(charge_point_model="T", charge_point_vendor="T")
            )
            await charger.call(
                call.StatusNotification(connector_id=1, error_code="NoError", status="Available")
            )
            uid = f"ADHOC{s.tag}"
            start_session = {
                "response_url": f"{s.stub.base_url}/commands/START_SESSION/{s.tag}",
                "token": token(uid, country_code="DE", party_id="PTP", type="AD_HOC_USER"),
                "location_id": s.location_id,
                "evse_uid": "EVSE1",
                "connector_id": "1",
                "authorization_reference": reference,
            }
            answer = _ok(
                await ptp.post("/ocpi/cpo/2.2.1/commands/START_SESSION", json=start_session)
            )
            assert answer["result"] == "ACCEPTED"
            await _until(lambda: charger.remote_starts, "RemoteStartTransaction at the charger")
            assert charger.remote_starts[0]["id_tag"] == uid

            begin = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=31)
            started = await charger.call(
                call.StartTransaction(
                    connector_id=1, id_tag=uid, meter_start=1_000, timestamp=_ts(begin)
                )
            )
            assert started.id_tag_info["status"] == "Accepted"

            stopped = await charger.call(
                call.StopTransaction(
                    meter_stop=9_250,
                    timestamp=_ts(begin + timedelta(minutes=30)),
                    transaction_id=started.transaction_id,
                    reason="EVDisconnected",
                    id_tag=uid,
                )
            )
            assert stopped.id_tag_info["status"] == "Accepted"
        finally:
            task.cancel()
            await ws.close()

        # 4. The CDR names our invoice; the PTP confirms its capture.
        issued = await _until(_cdr_of(ops, s), "our CDR of the terminal session", 90)
        assert issued["authorization_reference"] == reference
        assert issued["invoice_reference_id"] == reference
        assert issued["cdr_token"]["type"] == "AD_HOC_USER"
        assert Decimal(str(issued["total_energy"])) == Decimal("8.25")
        total = issued["total_cost"]
        advice = {
            "id": f"fac-{s.tag}",
            "authorization_reference": reference,
            "total_costs": {
                "before_taxes": total["excl_vat"],
                "taxes": [{"name": "VAT", "amount": 0}],
            },
            "currency": issued["currency"],
            "eft_data": ["VISA", "PAN **** 4242", f"EUR {total['excl_vat']}"],
            "capture_status_code": "SUCCESS",
            "last_updated": _ts(datetime.now(UTC)),
        }
        _ok(await ptp.post(f"{PAY}/financial-advice-confirmations", json=advice))
        served = _ok(await ptp.get(f"{PAY}/financial-advice-confirmations/fac-{s.tag}"))
        assert served["authorization_reference"] == reference
        assert served["eft_data"] == advice["eft_data"]
        listed = await _until(lambda: _advices(ops, reference), "the confirmation in the ops list")
        assert [(a["advice_id"], a["capture_status_code"]) for a in listed] == [
            (f"fac-{s.tag}", "SUCCESS")
        ]


def _cdr_of(ops: httpx.AsyncClient, s: Setup) -> Any:
    """Our CDR of the location's session (its id is the session's), once issued."""
    client: MongoClient[dict[str, Any]] = MongoClient(s.platform.namespace.settings.mongo_url)
    sessions = client[s.platform.namespace.name]["sessions"]

    async def check() -> dict[str, Any] | None:
        for doc in sessions.find({"session.location_id": s.location_id}):
            resp = await ops.get(f"/ops/cdrs/{doc['session']['id']}")
            if resp.status_code == 200 and resp.json().get("status_code") == 1000:
                found: dict[str, Any] = resp.json()["data"]
                return found
        return None

    return check


async def _advices(ops: httpx.AsyncClient, reference: str) -> list[dict[str, Any]] | None:
    resp = await ops.get(
        "/ops/payments/financial-advice-confirmations",
        params={"authorization_reference": reference},
    )
    data: list[dict[str, Any]] | None = resp.json().get("data") if resp.status_code == 200 else None
    return data or None
