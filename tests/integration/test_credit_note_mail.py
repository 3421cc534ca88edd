"""An issued credit note's one e-mail against the real services
(docs/adr/0041, 13): Kafka, Redis (the decision store and the claims) and
a real SMTP server (aiosmtpd).

November is closed and its invoice issued; a session is credited (asked
by a clerk, approved by a controller). The billing worker mails the
invoice and the credit note, each once: the credit note to the invoice's
billing address, its Factur-X PDF (type 381, naming the invoice, valid
against the XSD) and CSV attached, and ``CreditNoteMailed`` records the
recipient, the Message-ID and the SHA-256 of the bytes the server got. A
worker started again sends nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime

import facturx  # type: ignore[import-untyped]  # the package ships no type hints
from cryptography.fernet import Fernet

from api.app import create_app
from ocpi_hub.settings import Settings
from producers.billing.aggregate import SLICE
from producers.billing.credit_notes import CreditNoteRequest
from producers.billing.mailings import DocumentMailing
from producers.billing.state import Mailing
from producers.credit_notes import approve_credit_note, request_credit_note
from producers.invoicing import close_month
from producers.log import ensure_topics
from producers.write_path import WritePath, acting_as
from schemas.events.billing import CreditNoteMailed
from schemas.events.envelope import Actor
from schemas.topics import BILLING_CORPORATIONS
from tests.conftest import fresh_namespace
from tests.integration.test_billing import Inbox, smtp_server
from tests.integration.test_invoice_mail import ORIGIN, _attachments, worker_running
from tests.integration.test_invoices import _charge, _corporation, _events
from tests.unit.test_invoice_documents import pdftotext

CLERK = Actor(kind="account", id="clerk")
CONTROLLER = Actor(kind="account", id="controller")


def test_an_issued_credit_note_is_mailed_once(services: Settings) -> None:
    with fresh_namespace(services) as namespace, smtp_server(Inbox()) as (inbox, port):
        s = namespace.settings.model_copy(
            update={
                "secret_key": Fernet.generate_key().decode(),
                "smtp_port": port,
                "mail_retry_initial_s": 0.05,
                "mail_retry_max_s": 0.2,
            }
        )
        asyncio.run(_story(s, inbox))


async def _mailed(w: WritePath, cid: str, credit_note_id: str) -> Mailing:
    for _ in range(300):
        state = await w.state(SLICE, cid)
        assert state is not None
        mailed = state.credit_notes[credit_note_id].mailed
        if mailed is not None:
            return mailed
        await asyncio.sleep(0.1)
    raise AssertionError(f"credit note {credit_note_id} not recorded as mailed")


async def _story(s: Settings, inbox: Inbox) -> None:
    await ensure_topics(s.kafka_bootstrap, s.topic_prefix, 1)
    app = create_app(s)
    async with app.router.lifespan_context(app):
        w: WritePath = app.state.write_path
        cid = await _corporation(w, [("ada000000001", "0A0A0A", "R&D")])
        for n in range(3):
            await _charge(w, cid, f"A{n}", "0A0A0A", "8.25", "2026-11-10T12:00:00Z")
        report = await close_month(w, month="2026-11", origin=ORIGIN, now=datetime.now(UTC))
        [invoice_number] = report.shown()["numbers"]
        invoice_id = f"{cid}-202611"
        now = datetime.now(UTC)
        with acting_as(CLERK):
            asked = await request_credit_note(
                w,
                invoice_id=invoice_id,
                body=CreditNoteRequest.model_validate(
                    {"sessions": ["NL/CPO/A0"], "reason": "charger fault"}
                ),
                origin=ORIGIN,
                now=now,
            )
        with acting_as(CONTROLLER):
            note = await approve_credit_note(
                w, credit_note_id=asked.credit_note_id, four_eyes=True, origin=ORIGIN, now=now
            )
        assert note.number is not None
        cn_number = note.number

        # The worker mails the invoice and the credit note, each once.
        async with worker_running(s):
            await inbox.wait(2, timeout_s=60)
            mailed = await _mailed(w, cid, note.credit_note_id)
        assert len(inbox.messages) == 2
        [(message, envelope)] = [
            (m, e)
            for m, e in zip(inbox.messages, inbox.envelopes, strict=True)
            if cn_number in str(m["Subject"])
        ]
        assert envelope[1] == ["invoices@acme.example"]  # the invoice's billing address
        assert str(message["Subject"]).startswith(f"Credit note {cn_number}")
        assert f"credited on invoice {invoice_number}" in message.get_body().get_content()
        attached = _attachments(message)
        assert sorted(attached) == [f"credit-note-{cn_number}.csv", f"credit-note-{cn_number}.pdf"]
        content_type, pdf = attached[f"credit-note-{cn_number}.pdf"]
        assert content_type == "application/pdf"
        csv = attached[f"credit-note-{cn_number}.csv"][1]
        # What was recorded is what the server received.
        assert mailed.recipient == "invoices@acme.example"
        assert mailed.message_id == str(message["Message-ID"])
        assert mailed.message_id == f"<{note.credit_note_id}.issue@billing.ocpi-hub>"
        assert mailed.pdf_sha256 == hashlib.sha256(pdf).hexdigest()
        assert mailed.csv_sha256 == hashlib.sha256(csv).hexdigest()
        _, xml = facturx.get_xml_from_pdf(pdf, check_xsd=True)
        assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
        assert b"<ram:TypeCode>381</ram:TypeCode>" in xml
        text = pdftotext(pdf)
        assert cn_number in text and invoice_number in text
        assert csv.decode().count(f"{cn_number},") == 1

        # Started again, and asked directly as a group reading from the start
        # would: the credit note is recorded as mailed, nothing is sent.
        async with worker_running(s) as worker:
            mailing = DocumentMailing.of_credit_note(note.credit_note_id)
            assert await worker.invoices.handle(mailing) == "done"
            # Its claim stays taken (never released): a second send could not claim it.
            claim = worker.invoices.claim_key(mailing)
            assert await app.state.container.redis.exists(claim) == 1
            await asyncio.sleep(2)
        assert len(inbox.messages) == 2
        recorded = [
            e for e in await _events(s, BILLING_CORPORATIONS) if isinstance(e, CreditNoteMailed)
        ]
        assert len(recorded) == 1
