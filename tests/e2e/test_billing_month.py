"""A month of corporate billing, end to end (issue 14), against the real
platform processes (api, processors, projections, push, gateway and the
billing worker), a real SMTP server and a partner CPO over OCPI.

A corporation's two members are invited by e-mail and activate by the link
they receive. Ada charges twice with her card at one of our chargers over
OCPP; Grace charges at a partner CPO, which sends us two CDRs, the second
one credited (Credit CDR) before the month closes. The sessions are played
in November 2026 (the platform accepts charger clocks up to 40 days off),
so ``close-month 2026-11`` can run today. The invoice's figures are checked
against what this test computes by hand from the contract: 0.35 per kWh,
each charge rounded once, half up, to the cent; 21 % VAT on the net total.
A CDR arriving after the close stays open for the next invoice; a second
close, a month not ended and a malformed one are refused with nothing
written; a replay rebuilds the same billing rows.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from email.message import EmailMessage
from typing import Any

import facturx
import httpx
import pytest
from ocpp.v16 import call
from pymongo import MongoClient
from sqlalchemy import select

from ocpi_hub.bootstrap import drop_mysql_database, mysql_engine
from projections.mysql.billing import charges, corporations
from schemas.events.cdrs import cdr_key
from tests.conftest import fresh_namespace
from tests.e2e.conftest import (
    PROCESSES,
    Platform,
    cli_json,
    ops_auth,
    running_platform,
)
from tests.e2e.test_chargers import PASSWORD, _charger
from tests.integration.test_billing import Inbox, corporation_body, smtp_server
from tests.ocpi_objects import connector, evse, location
from tests.peer_stub import PeerStub, peer_stub
from tests.tariff_objects import tariff_json
from tests.unit.test_cdr_api import partner_cdr
from tests.unit.test_invoice_documents import pdftotext

MONTH = "2026-11"
PRICE = Decimal("0.35")
VAT = Decimal("0.21")
CENT = Decimal("0.01")


def charged(kwh: str) -> Decimal:
    """One charge: kWh x price, rounded once, half up, to the cent."""
    return (Decimal(kwh) * PRICE).quantize(CENT, rounding=ROUND_HALF_UP)


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


def _ts(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _data(resp: httpx.Response, *http: int) -> Any:
    assert resp.status_code in (http or (200,)), resp.text
    body = resp.json()
    assert body["status_code"] == 1000, body
    return body.get("data")


@pytest.fixture(scope="module")
def billing_platform(services: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    with (
        smtp_server() as (inbox, smtp_port),
        fresh_namespace(services) as ns,
        running_platform(
            ns,
            tmp_path_factory.mktemp("billing-logs"),
            commands=(*PROCESSES, "billing-worker"),
            smtp_host="127.0.0.1",
            smtp_port=smtp_port,
            mail_retry_initial_s=0.2,
            max_clock_skew_s=40 * 86400.0,
        ) as platform,
        peer_stub("NL", "CPO") as cpo,
    ):
        yield platform, inbox, cpo


def test_a_month_of_corporate_charging_ends_in_one_invoice(billing_platform: Any) -> None:
    platform, inbox, cpo = billing_platform
    asyncio.run(_month(platform, inbox, cpo))


def _links(messages: list[EmailMessage]) -> dict[str, str]:
    """Each invited member's activation path, by e-mail address."""
    found = {}
    for message in messages:
        body = message.get_body(("plain",))
        assert body is not None
        [path] = re.findall(r"(/billing/activation/\S+)", body.get_content())
        found[str(message["To"]).split("<")[-1].rstrip(">")] = path
    return found


def _cdr_headers(token_c: str) -> dict[str, str]:
    return {
        "Authorization": "Token " + base64.b64encode(token_c.encode()).decode(),
        "X-Request-ID": str(uuid.uuid4()),
        "X-Correlation-ID": str(uuid.uuid4()),
        "OCPI-from-country-code": "NL",
        "OCPI-from-party-id": "CPO",
        "OCPI-to-country-code": "ZZ",
        "OCPI-to-party-id": "HUB",
    }


def _roaming_cdr(cdr_id: str, uid: str, day: int, **changes: Any) -> dict[str, Any]:
    """The partner CPO's CDR of 8.25 kWh for the member's token, on ``day``
    of November 2026 (the shared sample, moved in time)."""
    body = partner_cdr(
        id=cdr_id,
        cdr_token={
            "country_code": "ZZ",
            "party_id": "HUB",
            "uid": uid,
            "type": "APP_USER",
            "contract_id": f"ZZ-HUB-{uid}",
        },
        **changes,
    )
    moved: dict[str, Any] = json.loads(json.dumps(body).replace("2026-06-02", f"2026-11-{day:02d}"))
    return moved


async def _month(platform: Platform, inbox: Inbox, cpo: PeerStub) -> None:
    tag = uuid.uuid4().hex[:6].upper()
    invite = cli_json(
        platform, "partners", "invite", "--country-code", "NL", "--party-id", "CPO",
        "--role", "CPO", "--partner-id", f"CPO-{tag}",
    )  # fmt: skip
    token_c = await asyncio.to_thread(cpo.register_with, invite["versions_url"], invite["token_a"])
    engine = mysql_engine(platform.namespace.settings)
    async with httpx.AsyncClient(
        base_url=platform.base_url, timeout=30, headers=ops_auth(platform.base_url)
    ) as ops:
        # --- bad input first: nothing of it is recorded --------------------------------
        bad_vat = await ops.post(
            "/ops/corporations", json=corporation_body(vat_id="NL004495446B01")
        )
        assert bad_vat.json()["status_code"] == 2001 and "vat_id" in bad_vat.text
        assert (await ops.get("/ops/corporations/nosuchcorp00")).status_code == 404
        assert (await ops.post("/ops/billing/months/2026-13/close")).status_code == 400
        not_ended = await ops.post(f"/ops/billing/months/{datetime.now(UTC):%Y-%m}/close")
        assert not_ended.status_code == 409, not_ended.text

        # --- the corporation and its two members, activated by e-mail ------------------
        corporation = _data(await ops.post("/ops/corporations", json=corporation_body()), 201)
        cid = corporation["corporation_id"]
        ada_card = f"ADA{tag}"
        ada = _data(
            await ops.post(
                f"/ops/corporations/{cid}/members",
                json={
                    "name": "Ada Lovelace",
                    "email": "ada@acme.example",
                    "cost_centre": "R&D",
                    "rfid_uid": ada_card,
                },
            ),
            201,
        )
        grace = _data(
            await ops.post(
                f"/ops/corporations/{cid}/members",
                json={"name": "Grace Hopper", "email": "grace@acme.example", "cost_centre": "OPS"},
            ),
            201,
        )
        await inbox.wait(2)
        links = _links(inbox.messages)
        uids = {}
        for email in ("ada@acme.example", "grace@acme.example"):
            activated = await ops.post(links[email])
            assert activated.status_code == 200, activated.text
            [uids[email]] = re.findall(r"<code id=token-uid>([^<]+)</code>", activated.text)
        assert uids["ada@acme.example"] == ada_card  # the card she was given
        members = _data(await ops.get(f"/ops/corporations/{cid}/members"))
        assert {m["member_id"]: m["status"] for m in members} == {
            ada["member_id"]: "ACTIVE",
            grace["member_id"]: "ACTIVE",
        }

        # --- Ada charges twice at our charger (OCPP), in November ----------------------
        loc, tid, cp_id = f"BILL-{tag}", f"BT-{tag}", f"CPB-{tag}"
        await ops.put(
            f"/ops/tariffs/{tid}",
            content=tariff_json(tid, country_code="ZZ", party_id="HUB"),
            headers={"content-type": "application/json"},
        )
        site = location(
            loc,
            country_code="ZZ",
            party_id="HUB",
            evses=[evse("EVSE1", status="UNKNOWN", connectors=[connector("1", tariff_ids=[tid])])],
        )
        _data(await ops.put(f"/ops/locations/{loc}", json=site), 200, 201)
        register = {
            "location_id": loc,
            "password": PASSWORD,
            "connectors": [{"ocpp_connector_id": 1, "evse_uid": "EVSE1", "connector_id": "1"}],
        }
        _data(await ops.put(f"/ops/charge-points/{cp_id}", json=register), 201)
        sessions_kwh = [("8.25", datetime(2026, 11, 20, 9, 0, tzinfo=UTC)),
                        ("4.40", datetime(2026, 11, 24, 18, 0, tzinfo=UTC))]  # fmt: skip
        charger, ws, task = await _charger(platform, cp_id)
        try:
            boot = await charger.call(
                call.BootNotification(charge_point_model="Bill-1", charge_point_vendor="Tests")
            )
            assert boot.status == "Accepted"
            await charger.call(
                call.StatusNotification(connector_id=1, error_code="NoError", status="Available")
            )
            for kwh, start in sessions_kwh:
                started = await charger.call(
                    call.StartTransaction(
                        connector_id=1, id_tag=ada_card, meter_start=0, timestamp=_ts(start)
                    )
                )
                assert started.id_tag_info["status"] == "Accepted", started
                stopped = await charger.call(
                    call.StopTransaction(
                        meter_stop=int(Decimal(kwh) * 1000),
                        timestamp=_ts(start + timedelta(minutes=40)),
                        transaction_id=started.transaction_id,
                        reason="EVDisconnected",
                        id_tag=ada_card,
                    )
                )
                assert stopped.id_tag_info["status"] == "Accepted", stopped
        finally:
            await ws.close()
            task.cancel()

        # --- Grace charges at the partner CPO: two CDRs, the second credited -----------
        grace_uid = uids["grace@acme.example"]
        cdrs = "/ocpi/emsp/2.2.1/cdrs"

        async def send(body: dict[str, Any]) -> None:
            sent = await ops.post(cdrs, json=body, headers=_cdr_headers(token_c))
            assert sent.json()["status_code"] == 1000, sent.text

        def rows() -> list[Any]:
            with engine.connect() as db:
                return list(db.execute(select(charges).where(charges.c.corporation_id == cid)))

        async def all_charged(count: int, credited: int) -> list[Any] | None:
            found = await asyncio.to_thread(rows)
            reversed_ = [r for r in found if r.reversed_by]
            return found if len(found) == count and len(reversed_) == credited else None

        await send(_roaming_cdr(f"G1-{tag}", grace_uid, 12))
        await send(_roaming_cdr(f"G2-{tag}", grace_uid, 13))
        # The Credit CDR once its CDR is charged: a credit read first (CDRs
        # are keyed by CDR, so it may be, on another partition) makes a
        # zero reversal and leaves the CDR uncharged (ADR 0035), the same
        # net on other lines.
        await until(lambda: all_charged(4, 0), "four charges", 120)
        await send(
            _roaming_cdr(f"G2C-{tag}", grace_uid, 13, credit=True, credit_reference_id=f"G2-{tag}")
        )
        recorded = await until(lambda: all_charged(4, 1), "the second one reversed", 60)
        by_member: dict[str, list[Any]] = {}
        for r in recorded:
            by_member.setdefault(r.member_id, []).append(r)
        assert sorted(r.amount for r in by_member[ada["member_id"]]) == sorted(
            charged(kwh) for kwh, _ in sessions_kwh
        )
        assert {r.role for r in by_member[ada["member_id"]]} == {"issued"}
        assert {r.role for r in by_member[grace["member_id"]]} == {"received"}

        # --- close the month -----------------------------------------------------------
        closed = await ops.post(f"/ops/billing/months/{MONTH}/close")
        assert closed.status_code == 200, closed.text

        async def issued_invoices() -> Any:
            # The ops API reads the MySQL rows, which the projections fold a
            # batch after the close answered (up to projection_linger_ms later).
            listed = _data(await ops.get("/ops/invoices", params={"corporation_id": cid}))
            return listed if [i["status"] for i in listed] == ["ISSUED"] else None

        [invoice] = await until(issued_invoices, "the month's invoice issued in its row", 30)
        detail = _data(await ops.get(f"/ops/invoices/{invoice['invoice_id']}"))

        # The figures by hand: Ada 8.25 + 4.40 kWh, Grace 8.25 kWh twice, the
        # second reversed; no monthly fee (nobody was active on 30 November).
        ada_net = charged("8.25") + charged("4.40")
        grace_net = charged("8.25") + charged("8.25")
        reversal = -charged("8.25")
        net = ada_net + grace_net + reversal
        vat = (net * VAT).quantize(CENT, rounding=ROUND_HALF_UP)
        assert Decimal(detail["net_total"]) == net
        assert Decimal(detail["vat_total"]) == vat
        assert Decimal(detail["gross_total"]) == net + vat
        assert detail["status"] == "ISSUED" and re.fullmatch(r"\d{4}-\d{6}", detail["number"])
        lines = {(line["kind"], line["cost_centre"]): line for line in detail["lines"]}
        assert Decimal(lines[("CHARGES", "R&D")]["net"]) == ada_net
        assert lines[("CHARGES", "R&D")]["sessions"] == 2
        assert Decimal(lines[("CHARGES", "R&D")]["energy_kwh"]) == Decimal("12.65")
        assert Decimal(lines[("CHARGES", "OPS")]["net"]) == grace_net
        assert Decimal(lines[("REVERSALS", "OPS")]["net"]) == reversal
        assert not [line for line in detail["lines"] if line["kind"] == "MONTHLY_FEE"]

        # --- the invoice e-mailed once to the billing address, with its files -----------
        number, invoice_id = detail["number"], invoice["invoice_id"]
        gross = net + vat
        await inbox.wait(3, timeout_s=90)  # the two activation links, then the invoice
        [mail] = [m for m in inbox.messages if number in str(m["Subject"])]
        assert str(mail["To"]).endswith("invoices@acme.example") or "invoices@acme.example" in str(
            mail["To"]
        )
        attached = {
            str(part.get_filename()): part.get_payload(decode=True)
            for part in mail.iter_attachments()
        }
        pdf, csv = attached[f"invoice-{number}.pdf"], attached[f"invoice-{number}.csv"]
        assert isinstance(pdf, bytes) and isinstance(csv, bytes)
        # The EN 16931 e-invoice inside the PDF passes the official schema.
        _, xml = facturx.get_xml_from_pdf(pdf, check_xsd=True)
        assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
        assert f"<ram:GrandTotalAmount>{gross}</ram:GrandTotalAmount>".encode() in xml
        # What a person reads in it, and the lines in the CSV.
        text = await asyncio.to_thread(pdftotext, pdf)
        for figure in (number, "Acme Fleet B.V.", f"€ {net}", f"€ {vat}", f"€ {gross}"):
            assert figure in text, figure
        assert csv.decode().count(f"{number},") == len(detail["lines"])
        # The ops API serves the very bytes that were mailed.
        served = await ops.get(f"/ops/invoices/{invoice_id}/pdf")
        assert served.status_code == 200 and served.content == pdf

        # --- a refund: Ada's second session, by credit note, approved by another ------
        clerk = cli_json(platform, "api-keys", "create", "--name", "clerk", "--role", "billing")
        second_session = [r for r in by_member[ada["member_id"]] if r.amount == charged("4.40")]
        requested = _data(
            await ops.post(
                f"/ops/invoices/{invoice_id}/credit-notes",
                json={"sessions": [second_session[0].cdr_key], "reason": "charger fault"},
            ),
            201,
        )
        note_id = requested["credit_note_id"]
        # Four eyes: who asked may not approve; a billing clerk does.
        own = await ops.post(f"/ops/credit-notes/{note_id}/approve")
        assert own.status_code == 403, own.text
        approved = _data(
            await ops.post(
                f"/ops/credit-notes/{note_id}/approve",
                headers={"Authorization": f"Bearer {clerk['key']}"},
            )
        )
        refund_vat = (charged("4.40") * VAT).quantize(CENT, rounding=ROUND_HALF_UP)
        assert re.fullmatch(r"CN-\d{4}-\d{6}", approved["number"]), approved
        assert approved["invoice_number"] == number
        assert Decimal(approved["net_total"]) == charged("4.40")
        assert Decimal(approved["vat_total"]) == refund_vat  # the invoice's rate, on its net
        assert Decimal(approved["gross_total"]) == charged("4.40") + refund_vat
        # The issued invoice is never changed; its figures are the same.
        unchanged = _data(await ops.get(f"/ops/invoices/{invoice_id}"))
        assert (unchanged["net_total"], unchanged["lines"]) == (
            detail["net_total"],
            detail["lines"],
        )
        # The same session cannot be refunded twice: nothing recorded.
        twice = await ops.post(
            f"/ops/invoices/{invoice_id}/credit-notes",
            json={"sessions": [second_session[0].cdr_key], "reason": "again"},
        )
        assert twice.status_code == 409, twice.text
        # The billing worker mails the issued credit note and records it: wait
        # for that record, or the replay below may be compared with a live
        # view that has not folded it yet.

        def folded_mailed() -> Any:
            with engine.connect() as db:
                row = db.execute(
                    select(corporations.c.state_json).where(corporations.c.corporation_id == cid)
                ).scalar_one()
            held = json.loads(row) if isinstance(row, str | bytes) else row
            note = held["state"]["credit_notes"].get(note_id)  # None: not folded yet
            return note and note.get("mailed")

        async def credit_note_mailed() -> Any:
            return await asyncio.to_thread(folded_mailed)

        await until(credit_note_mailed, "the credit note mailed and recorded", 90)

        # --- a late CDR waits for the next invoice; a second close writes nothing ------
        late = await ops.post(
            cdrs, json=_roaming_cdr(f"G3-{tag}", grace_uid, 28), headers=_cdr_headers(token_c)
        )
        assert late.json()["status_code"] == 1000, late.text

        late_key = cdr_key("NL", "CPO", f"G3-{tag}")

        async def late_charged() -> Any:
            return [r for r in await asyncio.to_thread(rows) if r.cdr_key == late_key]

        [late_row] = await until(late_charged, "the late CDR charged", 60)
        assert late_row.amount == charged("8.25")
        again = _data(await ops.get(f"/ops/invoices/{invoice['invoice_id']}"))
        assert again["net_total"] == detail["net_total"] and again["lines"] == detail["lines"]
        second = await ops.post(f"/ops/billing/months/{MONTH}/close")
        assert second.status_code == 409 and "already closed" in second.text
        assert len(_data(await ops.get("/ops/invoices", params={"corporation_id": cid}))) == 1

    # --- a replay rebuilds the same rows, invoices included -------------------------
    into = f"{platform.namespace.name}_bill_replay"
    result = platform.run("replay", "--into", into, "--compare", timeout=600)
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        assert json.loads(result.stdout.strip().splitlines()[-1])["differences"] == []
    finally:
        with MongoClient[dict[str, Any]](platform.env["OCPI_HUB_MONGO_URL"]) as client:
            client.drop_database(into)
        drop_mysql_database(platform.namespace.settings, into)
        engine.dispose()
