"""A payment-terminal session from pre-authorization to CDR (OCPI 2.3.0
Payments, we as CPO; docs/adr/0047), end to end on the running platform
(api, processors, projections, push, gateway as separate processes) with a
real ``ocpp`` library charger:

1. a Payment Terminal Provider (a stub OCPI party registered with us in
   OCPI 2.3.0, its Payments Sender recording what we send) creates its
   terminal on our Receiver; we assign our location to it through ops (the
   PATCH reaches the PTP) and the PTP reads the assignment back;
2. the PTP reads our tariff with its ``preauthorize_amount`` (what it
   reserves at its payment provider);
3. it starts the session with StartSession and its payment's
   ``authorization_reference`` (mod_payments, Transaction flow): our
   gateway sends RemoteStartTransaction, the charger starts, meters, stops;
4. the CDR we issue carries the ``invoice_reference_id`` (the terminal says
   the CPO invoices), and the PTP's financial advice confirmation for that
   reference is recorded and served back.

Then the other direction: we pull the PTP's terminal and advice lists (its
Sender pages them with ``Link``) with ``ocpi-hub partners
sync-payment-terminals`` / ``sync-payment-advices``, a second pull records
nothing, and our PUT of a terminal reaches the PTP, or, refused by it,
records nothing.

Payments is spoken in OCPI 2.3.0 only; the PTP's one 2.3.0 registration
sends StartSession too (Commands in 2.3.0): the session's token is the
PTP's party's, which is what the CDR builder matches.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
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
    stub: PeerStub  # the PTP, registered in 2.3.0 (Payments)
    headers: dict[str, str]  # the PTP's token at our API
    ops: dict[str, str]
    tag: str
    location_id: str
    charge_point_id: str
    tariff_id: str


@pytest.fixture(scope="module")
def setup(services: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """Our platform; a PTP registered with it in 2.3.0 (as an eMSP role),
    which also sends StartSession; one of our locations,
    priced with a tariff that states ``preauthorize_amount``, with a
    registered charge point."""
    with (
        fresh_namespace(services) as ns,
        running_platform(ns, tmp_path_factory.mktemp("payments-logs")) as platform,
        peer_stub("DE", "PTP", role="EMSP", payments=True, version="2.3.0") as stub,
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
        routed = {"OCPI-to-country-code": CC, "OCPI-to-party-id": PID}
        yield Setup(
            platform, stub, {**auth(token_c), **routed}, ops, tag, loc,
            cp, tid,
        )  # fmt: skip


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
        tariffs = _ok(await ptp.get("/ocpi/cpo/2.3.0/tariffs"))
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
                await ptp.post(
                    "/ocpi/cpo/2.3.0/commands/START_SESSION",
                    json=start_session,
                    headers=s.headers,
                )
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


async def test_we_pull_the_ptps_lists_once_and_put_a_terminal_it_may_refuse(setup: Setup) -> None:
    s = setup
    now = datetime.now(UTC).replace(microsecond=0)
    ids = [f"pull-{s.tag.lower()}-{i}" for i in range(3)]
    s.stub.terminals = [
        {
            "terminal_id": tid,
            "customer_reference": "ZZ-HUB",
            "city": "Berlin",
            "invoice_creator": "PTP",
            "last_updated": _ts(now - timedelta(minutes=5)),
        }
        for tid in ids
    ]
    # Named and skipped, the rest recorded.
    s.stub.terminals.append({"terminal_id": f"bad-{s.tag}", "invoice_creator": "NOBODY"})
    s.stub.advices = [
        {
            "id": f"fac-pull-{s.tag}-{i}",
            "authorization_reference": f"pp-pull-{s.tag}-{i}",
            "total_costs": {"before_taxes": 12.5, "taxes": [{"name": "VAT", "amount": 2.38}]},
            "currency": "EUR",
            "eft_data": ["VISA", "PAN **** 4242"],
            "capture_status_code": "SUCCESS",
            "last_updated": _ts(now - timedelta(minutes=2)),
        }
        for i in range(2)
    ]
    s.stub.page_size = 2
    s.stub.list_queries.clear()

    first = s.platform.run("partners", "sync-payment-terminals", "PTP-1")
    assert first.returncode == 0, first.stdout + first.stderr
    report = json.loads(first.stdout.strip().splitlines()[-1])
    assert (report["pages"], report["recorded"], report["unchanged"]) == (2, 3, 0)
    assert report["skipped"] == 1 and f"bad-{s.tag}" in first.stderr
    assert "invoice_creator" in first.stderr
    # Two pages: the second one through the Link of the first.
    assert [(p, q.get("offset")) for p, q in s.stub.list_queries] == [
        ("/payments/terminals", None),
        ("/payments/terminals", ["2"]),
    ]
    again = cli_json(s.platform, "partners", "sync-payment-terminals", "PTP-1")
    assert (again["recorded"], again["unchanged"]) == (0, 3)

    since = _ts(now - timedelta(hours=1))
    advices = cli_json(s.platform, "partners", "sync-payment-advices", "PTP-1", "--since", since)
    assert (advices["recorded"], advices["skipped"]) == (2, 0)
    assert s.stub.list_queries[-1][1]["date_from"] == [since]
    advices = cli_json(s.platform, "partners", "sync-payment-advices", "PTP-1", "--since", since)
    assert (advices["recorded"], advices["unchanged"]) == (0, 2)

    async with httpx.AsyncClient(base_url=s.platform.base_url, headers=s.ops, timeout=30) as ops:
        listed = await _until(
            lambda: _pulled_terminals(ops, ids), "the pulled terminals in the ops list"
        )
        assert sorted(t["terminal_id"] for t in listed) == ids
        found = await _until(
            lambda: _advices(ops, f"pp-pull-{s.tag}-1"), "a pulled confirmation in the ops list"
        )
        assert [a["advice_id"] for a in found] == [f"fac-pull-{s.tag}-1"]

        # Our PUT: the whole terminal, with our changes, reaches the PTP first.
        one = f"/ops/payments/terminals/PTP-1/{ids[0]}"
        changes = {"customer_reference": "OMV", "invoice_base_url": "https://inv.example.com/"}
        put = _ok(await ops.put(one, json=changes))
        assert (put["customer_reference"], put["city"]) == ("OMV", "Berlin")
        [(method, body)] = [
            (m, b) for m, p, b in s.stub.received if p == f"/payments/terminals/{ids[0]}"
        ]
        assert method == "PUT"
        assert body["terminal_id"] == ids[0]
        assert body["invoice_base_url"] == "https://inv.example.com/"
        assert body["invoice_creator"] == "PTP"

        # The PTP refuses the next one: 502 / 3001 and nothing recorded.
        s.stub.payments_status = 2001
        try:
            refused = await ops.put(one, json={"customer_reference": "REFUSED"})
        finally:
            s.stub.payments_status = 1000
        assert refused.status_code == 502, refused.text
        assert refused.json()["status_code"] == 3001
        held = _ok(await ops.get(one))
        assert held["object"]["customer_reference"] == "OMV"
        # Pulled again, the PTP's list (without our change) is older: nothing recorded.
        after = cli_json(s.platform, "partners", "sync-payment-terminals", "PTP-1")
        assert (after["recorded"], after["unchanged"]) == (0, 3)
        assert _ok(await ops.get(one))["object"]["customer_reference"] == "OMV"


async def _pulled_terminals(ops: httpx.AsyncClient, ids: list[str]) -> list[Any] | None:
    resp = await ops.get("/ops/payments/terminals", params={"ptp_partner_id": "PTP-1"})
    if resp.status_code != 200:
        return None
    listed = [t for t in resp.json().get("data") or [] if t["terminal_id"] in ids]
    return listed if len(listed) == len(ids) else None
