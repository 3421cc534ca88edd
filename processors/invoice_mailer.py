"""Invoice e-mails (issue 14, part D; docs/adr/0040).

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
from producers.billing import (
    SLICE,
    InvoiceSource,
    decide_invoice_mailed,
    invoice_source,
)
from producers.invoice_documents import InvoiceDocument, money
from producers.invoice_files import FileKind, InvoiceFile, InvoiceRenderer
from producers.write_path import Origin, RefusedError, WritePath
from schemas.events import Party
from schemas.events.billing import (
    FIRST_MAILING,
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
    """One mailing of an invoice: a short text, the Factur-X PDF and the
    CSV. Its Message-ID names the invoice and the mailing."""
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = formataddr((doc.buyer.legal_name, doc.buyer.email))
    message["Subject"] = f"{doc.kind.caption} {doc.number} from {doc.seller.legal_name}"
    message["Date"] = format_datetime(now)
    message["Message-ID"] = f"<{invoice_id}.{mailing_id}@billing.ocpi-hub>"
    due = money(doc.amount_due, doc.currency)
    message.set_content(
        f"Dear {doc.buyer.legal_name},\n\n"
        f"Attached is {doc.kind.caption.lower()} {doc.number} of "
        f"{doc.issue_date.isoformat()} for charging from {doc.period_start.isoformat()} "
        f"to {doc.period_end.isoformat()}: {due} incl. VAT, due by "
        f"{doc.due_date.isoformat()}.\n\n"
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

    await consume(
        bootstrap,
        prefix + BILLING_CORPORATIONS.name,
        f"{prefix}ocpi-hub-invoice-mailer",
        handle,
        stop,
        name="invoice_mailer",
    )
