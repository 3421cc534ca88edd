"""Invoice and credit note e-mails (issue 14, parts D and E; docs/adr/0040,
docs/adr/0041 13).

``ocpi-hub billing-worker`` reads the billing topic in its own consumer
group: each ``InvoiceIssued`` asks for the invoice's first mailing (id
``issue``), each ``InvoiceMailingRequested`` (``POST /ops/invoices/{id}/mail``)
for one more. A mailing is one e-mail to the billing address on the
invoice (as drafted), with the Factur-X PDF and the CSV attached.

**At most once per mailing** (processors/mail.py): the mailing is claimed in
Redis (``billing:invoice-mailed:<invoice>:<mailing>``) before the first
attempt and never released; once the server accepted the message,
``InvoiceMailed`` (Message-ID, recipient, SHA-256 of both attachments) is
recorded through the write path. A consumer group reading the topic from
the start finds each mailing recorded (or claimed) and sends nothing
again. A mailing whose fate is unknown is not sent again: ops ask for a
new one.

Each ``CreditNoteIssued`` asks for the credit note's one e-mail, to the
billing address on the invoice it corrects, by the same scheme: claimed as
``billing:credit-note-mailed:<credit note>``, recorded as
``CreditNoteMailed``.

Rendering takes a tenth of a second or more of CPU per invoice (fonts,
subsetting, Factur-X): it runs in a thread, off the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

import structlog
from pydantic import ValidationError

from processors.consuming import consume, state_caught_up
from processors.mail import MailDelivery
from producers.billing.aggregate import SLICE
from producers.billing.credit_notes import (
    CreditNoteSource,
    corporation_of_credit_note,
    credit_note_source,
)
from producers.billing.invoices import invoice_source
from producers.billing.mailings import decide_credit_note_mailed, decide_invoice_mailed
from producers.billing.state import InvoiceSource
from producers.invoice_documents import InvoiceDocument, money
from producers.invoice_files import FileKind, InvoiceFile, InvoiceRenderer
from producers.write_path import Origin, RefusedError, WritePath
from schemas.events import Party
from schemas.events.billing import (
    FIRST_MAILING,
    CreditNoteIssued,
    InvoiceIssued,
    InvoiceMailingRequested,
    InvoiceStatus,
)
from schemas.topics import BILLING_CORPORATIONS

log = structlog.get_logger(__name__)


def compose(
    *,
    mail_from: str,
    doc: InvoiceDocument,
    invoice_id: str,
    mailing_id: str,
    pdf: InvoiceFile,
    csv: InvoiceFile,
    now: datetime,
) -> EmailMessage:
    """One mailing of an invoice or a credit note (``invoice_id`` is then the
    credit note's id): a short text, the Factur-X PDF and the CSV. Its
    Message-ID names the document and the mailing."""
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = formataddr((doc.buyer.legal_name, doc.buyer.email))
    message["Subject"] = f"{doc.kind.caption} {doc.number} from {doc.seller.legal_name}"
    message["Date"] = format_datetime(now)
    message["Message-ID"] = f"<{invoice_id}.{mailing_id}@billing.ocpi-hub>"
    due = money(doc.amount_due, doc.currency)
    if doc.corrects is None:
        what = f"{due} incl. VAT, due by {doc.due_date.isoformat()}"
    else:
        # A credit note: what is credited, and the invoice it corrects.
        what = f"{due} incl. VAT credited on invoice {doc.corrects.number}"
    message.set_content(
        f"Dear {doc.buyer.legal_name},\n\n"
        f"Attached is {doc.kind.caption.lower()} {doc.number} of "
        f"{doc.issue_date.isoformat()} for charging from {doc.period_start.isoformat()} "
        f"to {doc.period_end.isoformat()}: {what}.\n\n"
        f"{doc.payment_terms}\n\n"
        f"The PDF ({pdf.filename}) carries the EN 16931 e-invoice (Factur-X) inside; "
        f"{csv.filename} lists its lines.\n\n"
        f"{doc.seller.legal_name}\n"
    )
    message.add_attachment(
        pdf.content, maintype="application", subtype="pdf", filename=pdf.filename
    )
    message.add_attachment(csv.content, maintype="text", subtype="csv", filename=csv.filename)
    return message


@dataclass
class InvoiceMailer:
    """Mails each requested mailing of an invoice at most once."""

    write_path: WritePath
    key_prefix: str
    mail_from: str
    delivery: MailDelivery
    renderer: InvoiceRenderer
    us: Party
    catch_up_s: float = 30.0
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def claim_key(self, invoice_id: str, mailing_id: str) -> str:
        return f"{self.key_prefix}billing:invoice-mailed:{invoice_id}:{mailing_id}"

    async def _caught_up(self, key: str, offset: int | None) -> None:
        if not await state_caught_up(
            self.write_path, SLICE, key, offset, timeout_s=self.catch_up_s
        ):
            log.warning("invoice_mailer_state_behind", key=key, offset=offset)

    def _render(self, source: InvoiceSource) -> tuple[InvoiceDocument, InvoiceFile, InvoiceFile]:
        return (
            self.renderer.document(source),
            self.renderer.render(source, FileKind.PDF),
            self.renderer.render(source, FileKind.CSV),
        )

    async def handle(
        self, corporation_id: str, invoice_id: str, mailing_id: str, offset: int | None = None
    ) -> str:
        """Send one mailing (read at ``offset`` of its partition) unless it
        was mailed or claimed already; what happened, in a word."""
        await self._caught_up(corporation_id, offset)
        state = await self.write_path.state(SLICE, corporation_id)
        try:
            source = invoice_source(state, invoice_id)
        except RefusedError:
            return "unknown"
        assert state is not None
        mailing = source.mailings.get(mailing_id)
        if mailing is None:
            return "unknown"
        if mailing.message_id is not None:
            return "done"
        if state.invoices[invoice_id].status is InvoiceStatus.VOID:
            return "void"  # cancelled before it was sent: not sent now
        try:
            doc, pdf, csv = await asyncio.to_thread(self._render, source)
        except (ValueError, ValidationError) as exc:
            # A document that cannot be made is a bug upstream: say so, send nothing.
            log.error("invoice_not_rendered", invoice_id=invoice_id, error=str(exc)[:500])
            return "unrenderable"
        message = compose(
            mail_from=self.mail_from,
            doc=doc,
            invoice_id=invoice_id,
            mailing_id=mailing_id,
            pdf=pdf,
            csv=csv,
            now=self.clock(),
        )
        outcome = await self.delivery.deliver(
            self.claim_key(invoice_id, mailing_id),
            message,
            what=f"invoice {invoice_id} mailing {mailing_id}",
        )
        if outcome != "sent":
            return outcome
        message_id = str(message["Message-ID"])
        origin = Origin(self.us, f"invoice-mail-{invoice_id}-{mailing_id}")
        await self.write_path.write(
            SLICE,
            corporation_id,
            lambda s: decide_invoice_mailed(
                s,
                invoice_id=invoice_id,
                mailing_id=mailing_id,
                recipient=doc.buyer.email,
                message_id=message_id,
                pdf_sha256=pdf.sha256,
                csv_sha256=csv.sha256,
                origin=origin,
                now=self.clock(),
            ),
        )
        log.info("invoice_mailed", invoice_id=invoice_id, mailing_id=mailing_id)
        return "mailed"

    def credit_note_claim_key(self, credit_note_id: str) -> str:
        return f"{self.key_prefix}billing:credit-note-mailed:{credit_note_id}"

    def _render_credit_note(
        self, source: CreditNoteSource
    ) -> tuple[InvoiceDocument, InvoiceFile, InvoiceFile]:
        return (
            self.renderer.credit_note_document(source),
            self.renderer.render_credit_note(source, FileKind.PDF),
            self.renderer.render_credit_note(source, FileKind.CSV),
        )

    async def handle_credit_note(self, credit_note_id: str, offset: int | None = None) -> str:
        """Send an issued credit note's one e-mail unless it was mailed or
        claimed already (docs/adr/0041, 13); what happened, in a word."""
        corporation_id = corporation_of_credit_note(credit_note_id)
        await self._caught_up(corporation_id, offset)
        state = await self.write_path.state(SLICE, corporation_id)
        try:
            source = credit_note_source(state, credit_note_id)
        except RefusedError:
            return "unknown"
        assert state is not None
        if state.credit_notes[credit_note_id].mailed is not None:
            return "done"
        try:
            doc, pdf, csv = await asyncio.to_thread(self._render_credit_note, source)
        except (ValueError, ValidationError) as exc:
            log.error(
                "credit_note_not_rendered", credit_note_id=credit_note_id, error=str(exc)[:500]
            )
            return "unrenderable"
        message = compose(
            mail_from=self.mail_from,
            doc=doc,
            invoice_id=credit_note_id,
            mailing_id=FIRST_MAILING,
            pdf=pdf,
            csv=csv,
            now=self.clock(),
        )
        outcome = await self.delivery.deliver(
            self.credit_note_claim_key(credit_note_id),
            message,
            what=f"credit note {credit_note_id}",
        )
        if outcome != "sent":
            return outcome
        message_id = str(message["Message-ID"])
        origin = Origin(self.us, f"credit-note-mail-{credit_note_id}")
        await self.write_path.write(
            SLICE,
            corporation_id,
            lambda s: decide_credit_note_mailed(
                s,
                credit_note_id=credit_note_id,
                recipient=doc.buyer.email,
                message_id=message_id,
                pdf_sha256=pdf.sha256,
                csv_sha256=csv.sha256,
                origin=origin,
                now=self.clock(),
            ),
        )
        log.info("credit_note_mailed", credit_note_id=credit_note_id)
        return "mailed"


async def run_invoice_mailer(
    mailer: InvoiceMailer, bootstrap: str, prefix: str, stop: asyncio.Event
) -> None:
    """Consume the billing topic in the invoice mailer's group until
    ``stop``; offsets are committed after each batch (a batch handled again
    finds its mailings recorded or claimed and sends nothing)."""

    async def handle(event: object, offset: int) -> None:
        if isinstance(event, InvoiceIssued):
            p = event.payload
            await mailer.handle(p.corporation_id, p.invoice_id, FIRST_MAILING, offset)
        elif isinstance(event, InvoiceMailingRequested):
            r = event.payload
            await mailer.handle(r.corporation_id, r.invoice_id, r.mailing_id, offset)
        elif isinstance(event, CreditNoteIssued):
            await mailer.handle_credit_note(event.payload.credit_note_id, offset)

    await consume(
        bootstrap,
        prefix + BILLING_CORPORATIONS.name,
        f"{prefix}ocpi-hub-invoice-mailer",
        handle,
        stop,
        name="invoice_mailer",
    )
