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
``CreditNoteMailed``. Both kinds take one path, ``InvoiceMailer.handle``
of a ``DocumentMailing`` (producers/billing/mailings.py: which event asks
for which e-mail, whether it is due, how it is recorded); only the claim
keys, correlation ids and events differ, as they were first written.

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
from producers.billing.credit_notes import CreditNoteSource
from producers.billing.mailings import (
    DocumentKind,
    DocumentMailing,
    MailReceipt,
    decide_document_mailed,
    document_source,
    mailing_asked_by,
    skip_reason,
)
from producers.billing.state import InvoiceSource
from producers.invoice_documents import InvoiceDocument, money
from producers.invoice_files import FileKind, InvoiceFile, InvoiceRenderer
from producers.write_path import Origin, WritePath
from schemas.events import Party
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
    """Mails each asked-for e-mail of an invoice or a credit note at most once."""

    write_path: WritePath
    key_prefix: str
    mail_from: str
    delivery: MailDelivery
    renderer: InvoiceRenderer
    us: Party
    catch_up_s: float = 30.0
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def claim_key(self, mailing: DocumentMailing) -> str:
        # The keys claimed since each kind was built: a new form would let a
        # mailing claimed under the old one be sent a second time.
        if mailing.kind is DocumentKind.INVOICE:
            return (
                f"{self.key_prefix}billing:invoice-mailed:{mailing.document_id}:"
                f"{mailing.mailing_id}"
            )
        return f"{self.key_prefix}billing:credit-note-mailed:{mailing.document_id}"

    async def _caught_up(self, key: str, offset: int | None) -> None:
        if not await state_caught_up(
            self.write_path, SLICE, key, offset, timeout_s=self.catch_up_s
        ):
            log.warning("invoice_mailer_state_behind", key=key, offset=offset)

    def _render(
        self, source: InvoiceSource | CreditNoteSource
    ) -> tuple[InvoiceDocument, InvoiceFile, InvoiceFile]:
        if isinstance(source, InvoiceSource):
            doc = self.renderer.document(source)
        else:
            doc = self.renderer.credit_note_document(source)
        return doc, self.renderer.file(doc, FileKind.PDF), self.renderer.file(doc, FileKind.CSV)

    async def handle(self, mailing: DocumentMailing, offset: int | None = None) -> str:
        """Send one e-mail (asked for by the event read at ``offset`` of its
        partition) unless it was mailed or claimed already, or is not due
        (``skip_reason``); what happened, in a word."""
        corporation_id = mailing.corporation_id
        await self._caught_up(corporation_id, offset)
        state = await self.write_path.state(SLICE, corporation_id)
        skipped = skip_reason(state, mailing)
        if skipped is not None:
            return skipped
        try:
            doc, pdf, csv = await asyncio.to_thread(self._render, document_source(state, mailing))
        except (ValueError, ValidationError) as exc:
            # A document that cannot be made is a bug upstream: say so, send nothing.
            log.error(f"{mailing.kind.value}_not_rendered", **_ids(mailing), error=str(exc)[:500])
            return "unrenderable"
        message = compose(
            mail_from=self.mail_from,
            doc=doc,
            invoice_id=mailing.document_id,
            mailing_id=mailing.mailing_id,
            pdf=pdf,
            csv=csv,
            now=self.clock(),
        )
        outcome = await self.delivery.deliver(self.claim_key(mailing), message, what=str(mailing))
        if outcome != "sent":
            return outcome
        receipt = MailReceipt(
            recipient=doc.buyer.email,
            message_id=str(message["Message-ID"]),
            pdf_sha256=pdf.sha256,
            csv_sha256=csv.sha256,
        )
        origin = Origin(self.us, _correlation_id(mailing))
        await self.write_path.write(
            SLICE,
            corporation_id,
            lambda s: decide_document_mailed(
                s, mailing=mailing, receipt=receipt, origin=origin, now=self.clock()
            ),
        )
        log.info(f"{mailing.kind.value}_mailed", **_ids(mailing))
        return "mailed"


def _ids(mailing: DocumentMailing) -> dict[str, str]:
    # The log's fields as each kind has logged them (invoice_id, credit_note_id).
    return {f"{mailing.kind.value}_id": mailing.document_id, "mailing_id": mailing.mailing_id}


def _correlation_id(mailing: DocumentMailing) -> str:
    # As each kind has recorded it since it was built.
    if mailing.kind is DocumentKind.INVOICE:
        return f"invoice-mail-{mailing.document_id}-{mailing.mailing_id}"
    return f"credit-note-mail-{mailing.document_id}"


async def run_invoice_mailer(
    mailer: InvoiceMailer, bootstrap: str, prefix: str, stop: asyncio.Event
) -> None:
    """Consume the billing topic in the invoice mailer's group until
    ``stop``; offsets are committed after each batch (a batch handled again
    finds its mailings recorded or claimed and sends nothing)."""

    async def handle(event: object, offset: int) -> None:
        mailing = mailing_asked_by(event)
        if mailing is not None:
            await mailer.handle(mailing, offset)

    await consume(
        bootstrap,
        prefix + BILLING_CORPORATIONS.name,
        f"{prefix}ocpi-hub-invoice-mailer",
        handle,
        stop,
        name="invoice_mailer",
    )
