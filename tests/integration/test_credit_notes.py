"""Credit notes against the real services (docs/adr/0041): Kafka, Redis
(the decision store) and MariaDB (the tables folded by replay).

November is closed for a corporation with two members. Over the ops API,
with two real API keys of role billing (a clerk and a controller): a
session is credited (requested by the clerk, refused to the clerk's own
approval, approved by the controller: CN number, VAT; its Factur-X PDF,
XML and CSV served, the XML valid against the XSD), an over-credit, a
negative amount, a session not on the invoice and an unknown invoice are
refused with nothing recorded, a request is rejected, what remains is
credited and nets the invoice to zero. Replayed event by event and in
batches, the credit note rows, their lines and the invoice's credited
totals are the same, and the ops reads list them.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import facturx  # type: ignore[import-untyped]  # the package ships no type hints
import httpx
from sqlalchemy import select

from api.app import create_app
from ocpi_hub.bootstrap import mysql_engine
from ocpi_hub.settings import Settings
from producers.invoicing import close_month
from producers.log import ensure_topics
from producers.write_path import WritePath
from projections.mysql.billing import BillingRowWriter, credit_note_lines, credit_notes, invoices
from projections.mysql.migrate import migrate
from projections.runner import replay
from schemas.events.billing import CreditNoteRequested
from schemas.events.operators import OperatorRole
from schemas.topics import BILLING_CORPORATIONS, BILLING_INVOICE_NUMBERS
from tests.conftest import fresh_namespace
from tests.integration.test_invoices import ORIGIN, _charge, _corporation, _events
from tests.ops_admin import issue_key
from tests.unit.test_invoice_documents import pdftotext


def _tables(s: Settings) -> dict[str, dict[str, Any]]:
    engine = mysql_engine(s)
    try:
        with engine.connect() as conn:
            return {
                "notes": {
                    r.credit_note_id: dict(r._mapping) for r in conn.execute(select(credit_notes))
                },
                "lines": {
                    f"{r.credit_note_id}/{r.line_no}": dict(r._mapping)
                    for r in conn.execute(select(credit_note_lines))
                },
                "invoices": {
                    r.invoice_id: dict(r._mapping) for r in conn.execute(select(invoices))
                },
            }
    finally:
        engine.dispose()


async def _replayed(s: Settings) -> dict[str, dict[str, Any]]:
    engine = mysql_engine(s)
    try:
        await asyncio.to_thread(migrate, engine)
        writer = BillingRowWriter(engine)
        topics = (BILLING_CORPORATIONS.name,)
        await asyncio.to_thread(writer.wipe)
        await replay(s.kafka_bootstrap, s.topic_prefix, [writer], batch_size=1, topics=topics)
        one_by_one = _tables(s)
        # Again over the same rows: the offset guard applies nothing twice.
        await replay(s.kafka_bootstrap, s.topic_prefix, [writer], batch_size=1, topics=topics)
        assert _tables(s) == one_by_one
        await asyncio.to_thread(writer.wipe)
        await replay(s.kafka_bootstrap, s.topic_prefix, [writer], batch_size=500, topics=topics)
        assert _tables(s) == one_by_one
        return one_by_one
    finally:
        engine.dispose()


def test_credit_notes_requested_approved_rejected_and_refused(services: Settings) -> None:
    with fresh_namespace(services) as namespace:
        # Bounded, as test_billing's story (a hang seen once on a loaded machine).
        asyncio.run(asyncio.wait_for(_credit_note_story(namespace.settings), 300))


def _key_id(key: str) -> str:
    return key.split("_")[1]


async def _credit_note_story(s: Settings) -> None:
    await ensure_topics(s.kafka_bootstrap, s.topic_prefix, 1)
    app = create_app(s)  # the real access check: real keys of role billing
    async with app.router.lifespan_context(app):
        w: WritePath = app.state.write_path
        acme = await _corporation(
            w, [("ada000000001", "0A0A0A", "R&D"), ("bob000000002", "0B0B0B", None)]
        )
        for n in range(3):
            await _charge(w, acme, f"A{n}", "0A0A0A", "8.25", "2026-11-10T12:00:00Z")
        await _charge(w, acme, "B0", "0B0B0B", "10", "2026-11-30T23:59:59Z")
        await close_month(w, month="2026-11", origin=ORIGIN, now=datetime(2026, 12, 1, tzinfo=UTC))
        invoice = f"{acme}-202611"  # net 17.17, VAT 3.61, gross 20.78
        clerk = await issue_key(w, OperatorRole.BILLING)
        controller = await issue_key(w, OperatorRole.BILLING)
        viewer = await issue_key(w, OperatorRole.VIEWER)

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://hub.example") as http:

            def as_(key: str) -> dict[str, str]:
                return {"Authorization": f"Bearer {key}"}

            base = f"/ops/invoices/{invoice}/credit-notes"
            # A viewer may not even ask.
            forbidden = await http.post(
                base, json={"amount": "1.00", "reason": "x"}, headers=as_(viewer)
            )
            assert forbidden.status_code == 403

            # A session, requested by the clerk.
            asked = await http.post(
                base,
                json={"sessions": ["NL/CPO/A0"], "reason": "charger fault"},
                headers=as_(clerk),
            )
            assert asked.status_code == 201, asked.text
            first = asked.json()["data"]
            assert (first["credit_note_id"], first["status"], first["net_total"]) == (
                f"{invoice}-cn1",
                "REQUESTED",
                "2.89",
            )
            assert first["requested_by"] == f"api_key:{_key_id(clerk)}"
            own = await http.post(f"/ops/credit-notes/{invoice}-cn1/approve", headers=as_(clerk))
            assert own.status_code == 403 and "four eyes" in own.json()["status_message"]
            approved = await http.post(
                f"/ops/credit-notes/{invoice}-cn1/approve", headers=as_(controller)
            )
            assert approved.status_code == 200, approved.text
            one = approved.json()["data"]
            year = datetime.now(UTC).year
            assert (one["status"], one["number"], one["vat_total"], one["gross_total"]) == (
                "ISSUED",
                f"CN-{year}-000001",
                "0.61",  # 2.89 x 21 % = 0.6069
                "3.50",
            )
            assert one["decided_by"] == f"api_key:{_key_id(controller)}"

            # Its files (docs/adr/0041, 12), as an invoice's are served.
            files: dict[str, bytes] = {}
            for ext, media in (
                ("pdf", "application/pdf"),
                ("xml", "application/xml"),
                ("csv", "text/csv; charset=utf-8"),
            ):
                got = await http.get(f"/ops/credit-notes/{invoice}-cn1/{ext}", headers=as_(clerk))
                assert got.status_code == 200, got.text
                assert got.headers["content-type"] == media
                assert got.headers["content-disposition"] == (
                    f'attachment; filename="credit-note-CN-{year}-000001.{ext}"'
                )
                files[ext] = got.content
            cn_number, invoice_number = f"CN-{year}-000001", f"{year}-000001"
            name, xml = facturx.get_xml_from_pdf(files["pdf"], check_xsd=True)
            assert name == "factur-x.xml" and xml == files["xml"]
            assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
            # Type 381, its number, the invoice it corrects (BG-3), its totals.
            assert b"<ram:TypeCode>381</ram:TypeCode>" in xml
            assert f"<ram:ID>{cn_number}</ram:ID>".encode() in xml
            assert f"<ram:IssuerAssignedID>{invoice_number}</ram:IssuerAssignedID>".encode() in xml
            assert b"<ram:GrandTotalAmount>3.50</ram:GrandTotalAmount>" in xml
            text = pdftotext(files["pdf"])
            for figure in (cn_number, invoice_number, "€ 2.89", "€ 0.61", "€ 3.50"):
                assert figure in text, figure
            assert files["csv"].decode().count(f"{cn_number},") == 1  # the one session
            # A viewer may not download; one not issued has no files (409);
            # one unknown is 404.
            viewer_got = await http.get(f"/ops/credit-notes/{invoice}-cn1/pdf", headers=as_(viewer))
            assert viewer_got.status_code == 403
            for ext in ("pdf", "xml", "csv"):
                nothing = await http.get(
                    f"/ops/credit-notes/{invoice}-cn9/{ext}", headers=as_(clerk)
                )
                assert nothing.status_code == 404, nothing.text

            # Refused, nothing recorded.
            before = len(await _events(s, BILLING_CORPORATIONS))
            numbers_before = len(await _events(s, BILLING_INVOICE_NUMBERS))
            refusals: list[tuple[str, Any, int | None, str]] = [
                (base, {"amount": "14.29", "reason": "too much"}, 409, "more than remains"),
                # The body's own check: OCPI 2001 (its HTTP status is the
                # error handlers' rule, api/errors.py).
                (base, {"amount": "-5.00", "reason": "negative"}, None, "amount"),
                (base, {"amount": "1.005", "reason": "sub-cent"}, None, "amount"),
                (base, {"sessions": ["NL/CPO/A0"], "reason": "twice"}, 409, "already on"),
                (base, {"sessions": ["NL/CPO/ZZ"], "reason": "?"}, 400, "not a session on"),
                (
                    f"/ops/invoices/{acme}-202610/credit-notes",
                    {"amount": "1.00", "reason": "?"},
                    404,
                    "no invoice",
                ),
                (f"/ops/credit-notes/{invoice}-cn1/approve", None, 409, "already decided"),
                (f"/ops/credit-notes/{invoice}-cn7/approve", None, 404, "no credit note"),
            ]
            for path, body, status, says in refusals:
                refused = await http.post(path, json=body, headers=as_(controller))
                assert refused.status_code == status or status is None, (path, body, refused.text)
                assert refused.json()["status_code"] in (2001, 2000), refused.text
                assert says in refused.json()["status_message"], refused.text
            assert len(await _events(s, BILLING_CORPORATIONS)) == before
            assert len(await _events(s, BILLING_INVOICE_NUMBERS)) == numbers_before

            # A request rejected: its amount is free again.
            asked = await http.post(
                base, json={"amount": "14.28", "reason": "goodwill"}, headers=as_(clerk)
            )
            assert asked.json()["data"]["credit_note_id"] == f"{invoice}-cn2"
            rejected = await http.post(
                f"/ops/credit-notes/{invoice}-cn2/reject",
                json={"reason": "not agreed"},
                headers=as_(controller),
            )
            assert rejected.json()["data"]["status"] == "REJECTED", rejected.text
            for ext in ("pdf", "xml", "csv"):
                refused = await http.get(
                    f"/ops/credit-notes/{invoice}-cn2/{ext}", headers=as_(clerk)
                )
                assert refused.status_code == 409, refused.text
                assert "only an issued credit note" in refused.json()["status_message"]
            # What remains (17.17 - 2.89): its VAT is what remains of the invoice's.
            asked = await http.post(
                base, json={"amount": "14.28", "reason": "contract ended"}, headers=as_(clerk)
            )
            pending = await http.get(f"/ops/credit-notes/{invoice}-cn3/pdf", headers=as_(clerk))
            assert pending.status_code == 409, pending.text
            last = await http.post(
                f"/ops/credit-notes/{invoice}-cn3/approve", headers=as_(controller)
            )
            settled = last.json()["data"]
            assert (settled["number"], settled["vat_total"], settled["settles_invoice"]) == (
                f"CN-{year}-000002",
                "3.00",  # 3.61 - 0.61
                True,
            )
            requested = [
                e
                for e in await _events(s, BILLING_CORPORATIONS)
                if isinstance(e, CreditNoteRequested)
            ]
            assert {str(e.actor) for e in requested} == {f"api_key:{_key_id(clerk)}"}

        tables = await _replayed(s)
        notes = tables["notes"]
        assert {n: (r["status"], r["number"]) for n, r in notes.items()} == {
            f"{invoice}-cn1": ("ISSUED", f"CN-{year}-000001"),
            f"{invoice}-cn2": ("REJECTED", None),
            f"{invoice}-cn3": ("ISSUED", f"CN-{year}-000002"),
        }
        assert notes[f"{invoice}-cn2"]["reject_reason"] == "not agreed"
        assert notes[f"{invoice}-cn1"]["invoice_number"] == f"{year}-000001"
        line = tables["lines"][f"{invoice}-cn1/1"]
        assert (line["kind"], line["cdr_key"], str(line["energy_kwh"]), str(line["net"])) == (
            "SESSION",
            "NL/CPO/A0",
            "8.250000",
            "2.890000",
        )
        row = tables["invoices"][invoice]
        # The invoice as issued, and its credit notes netting it to zero.
        assert [str(row[k]) for k in ("net_total", "vat_total", "gross_total")] == [
            "17.170000",
            "3.610000",
            "20.780000",
        ]
        assert [str(row[k]) for k in ("credited_net", "credited_vat", "credited_gross")] == [
            "17.170000",
            "3.610000",
            "20.780000",
        ]
        assert row["status"] == "ISSUED"

        async with httpx.AsyncClient(transport=transport, base_url="https://hub.example") as http:
            listed = await http.get(
                f"/ops/credit-notes?invoice_id={invoice}&status=ISSUED", headers=as_(controller)
            )
            assert [n["number"] for n in listed.json()["data"]] == [
                f"CN-{year}-000001",
                f"CN-{year}-000002",
            ]
            page = await http.get(
                f"/ops/credit-notes?corporation_id={acme}&limit=2", headers=as_(controller)
            )
            assert page.headers["X-Next-After"] == f"{invoice}-cn2"
            shown = await http.get(f"/ops/credit-notes/{invoice}-cn3", headers=as_(controller))
            assert [ln["kind"] for ln in shown.json()["data"]["lines"]] == ["AMOUNT"]
            missing = await http.get(f"/ops/credit-notes/{invoice}-cn9", headers=as_(controller))
            assert missing.status_code == 404
