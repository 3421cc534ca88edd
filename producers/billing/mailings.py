"""E-mails of a corporation's documents: an invoice's mailings (its issue's
own and each re-send asked for, docs/adr/0040, 3 and 4) and an issued
credit note's one e-mail (docs/adr/0041, 13). Pure: no I/O, the clock
passed in; the mailer is processors/invoice_mailer.py.

Both are one step, "a document of the corporation was mailed": a
``DocumentMailing`` names the document and the mailing, the state holds
each as a ``Mailing``, and once the SMTP server accepted it
``decide_document_mailed`` records the recipient, the Message-ID and the
SHA-256 of the PDF and CSV sent, once. Only the events differ
(``InvoiceMailed``, ``CreditNoteMailed``): they are a published contract
kept in the log forever, so each kind keeps its own.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from producers.billing.credit_notes import (
    CreditNoteSource,
    corporation_of_credit_note,
    credit_note_source,
)
from producers.billing.invoices import corporation_of_invoice, invoice_source
from producers.billing.state import CorporationState, InvoiceSource, Mailing
from producers.write_path import Decision, Origin, RefusedError, conflict, recorded_now, unknown
from schemas.events.billing import (
    FIRST_MAILING,
    CreditNoteIssued,
    CreditNoteMailed,
    CreditNoteMailedPayload,
    InvoiceIssued,
    InvoiceMailed,
    InvoiceMailedPayload,
    InvoiceMailingRequested,
    InvoiceMailingRequestedPayload,
    InvoiceStatus,
)


class DocumentKind(StrEnum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"


@dataclass(frozen=True)
class DocumentMailing:
    """One e-mail of one of a corporation's documents: a mailing of an
    invoice (its issue's own, ``issue``, or a re-send) or the one e-mail of
    an issued credit note (always ``issue``)."""

    kind: DocumentKind
    document_id: str
    mailing_id: str = FIRST_MAILING

    @classmethod
    def of_invoice(cls, invoice_id: str, mailing_id: str) -> DocumentMailing:
        return cls(DocumentKind.INVOICE, invoice_id, mailing_id)

    @classmethod
    def of_credit_note(cls, credit_note_id: str) -> DocumentMailing:
        return cls(DocumentKind.CREDIT_NOTE, credit_note_id)

    @property
    def corporation_id(self) -> str:
        if self.kind is DocumentKind.INVOICE:
            return corporation_of_invoice(self.document_id)
        return corporation_of_credit_note(self.document_id)

    def __str__(self) -> str:
        if self.kind is DocumentKind.INVOICE:
            return f"invoice {self.document_id} mailing {self.mailing_id}"
        return f"credit note {self.document_id}"


@dataclass(frozen=True)
class MailReceipt:
    """What the SMTP server accepted: to whom, under which Message-ID, and
    the SHA-256 of the two attachments' bytes (docs/adr/0040, 3)."""

    recipient: str
    message_id: str
    pdf_sha256: str
    csv_sha256: str


def mailing_asked_by(event: object) -> DocumentMailing | None:
    """The e-mail an event asks for: an invoice's issue asks for its first
    mailing, a re-send request for one more, a credit note's issue for its
    one e-mail; any other event for none."""
    if isinstance(event, InvoiceIssued):
        return DocumentMailing.of_invoice(event.payload.invoice_id, FIRST_MAILING)
    if isinstance(event, InvoiceMailingRequested):
        return DocumentMailing.of_invoice(event.payload.invoice_id, event.payload.mailing_id)
    if isinstance(event, CreditNoteIssued):
        return DocumentMailing.of_credit_note(event.payload.credit_note_id)
    return None


def document_source(
    state: CorporationState | None, mailing: DocumentMailing
) -> InvoiceSource | CreditNoteSource:
    """What the mailed document's files are rendered from; ``RefusedError``
    404 for an unknown document, 409 for one without files yet (a draft
    invoice, a credit note not issued)."""
    if mailing.kind is DocumentKind.INVOICE:
        return invoice_source(state, mailing.document_id)
    return credit_note_source(state, mailing.document_id)


def _holds(state: CorporationState, mailing: DocumentMailing) -> bool:
    """Whether the state holds the mailed document (its mailings' home)."""
    if mailing.kind is DocumentKind.INVOICE:
        return mailing.document_id in state.invoice_sources
    return mailing.document_id in state.credit_notes


def _held(state: CorporationState, mailing: DocumentMailing) -> Mailing | None:
    """The mailing as the state holds it; None for a document or mailing it
    does not hold. A credit note's one e-mail is asked for by its issue."""
    if mailing.kind is DocumentKind.INVOICE:
        source = state.invoice_sources.get(mailing.document_id)
        return source.mailings.get(mailing.mailing_id) if source is not None else None
    note = state.credit_notes.get(mailing.document_id)
    if note is None or note.issued_at is None or mailing.mailing_id != FIRST_MAILING:
        return None
    return note.mailed or Mailing(mailing_id=FIRST_MAILING, requested_at=note.issued_at)


def _with(state: CorporationState, mailing: DocumentMailing, held: Mailing) -> CorporationState:
    if mailing.kind is DocumentKind.INVOICE:
        source = state.invoice_sources[mailing.document_id]
        source = source.model_copy(update={"mailings": {**source.mailings, held.mailing_id: held}})
        return state.model_copy(
            update={"invoice_sources": {**state.invoice_sources, mailing.document_id: source}}
        )
    note = state.credit_notes[mailing.document_id].model_copy(update={"mailed": held})
    return state.model_copy(
        update={"credit_notes": {**state.credit_notes, mailing.document_id: note}}
    )


def evolve_mailing(
    state: CorporationState, event: InvoiceMailingRequested | InvoiceMailed | CreditNoteMailed
) -> CorporationState:
    """Fold a re-send request of an invoice, and the e-mail of any document."""
    if isinstance(event, InvoiceMailingRequested):
        r = event.payload
        asked = DocumentMailing.of_invoice(r.invoice_id, r.mailing_id)
        if not _holds(state, asked):
            return state
        return _with(state, asked, Mailing(mailing_id=r.mailing_id, requested_at=r.at))
    if isinstance(event, InvoiceMailed):
        mailing = DocumentMailing.of_invoice(event.payload.invoice_id, event.payload.mailing_id)
    else:
        mailing = DocumentMailing.of_credit_note(event.payload.credit_note_id)
    if not _holds(state, mailing):
        return state
    m = event.payload
    held = _held(state, mailing)
    mailed = Mailing(
        mailing_id=mailing.mailing_id,
        requested_at=held.requested_at if held is not None else m.at,
        recipient=m.recipient,
        message_id=m.message_id,
        pdf_sha256=m.pdf_sha256,
        csv_sha256=m.csv_sha256,
        mailed_at=m.at,
    )
    return _with(state, mailing, mailed)


def mailing_of(state: CorporationState | None, mailing: DocumentMailing) -> Mailing:
    """The mailing as the state holds it (``message_id`` set once it was
    mailed); ``RefusedError`` as ``document_source`` says, or 404 for a
    mailing never asked for."""
    document_source(state, mailing)
    assert state is not None
    held = _held(state, mailing)
    if held is None:
        what = mailing.kind.value.replace("_", " ")
        raise unknown(f"mailing {mailing.mailing_id!r} of {what} {mailing.document_id!r}")
    return held


def skip_reason(state: CorporationState | None, mailing: DocumentMailing) -> str | None:
    """Why the mailer sends nothing, in its word, or None when the e-mail
    is due: "unknown" (no such document or mailing, or nothing to mail
    yet), "done" (the server accepted it), "void" (an invoice voided before
    its mailing was sent: it is cancelled)."""
    try:
        held = mailing_of(state, mailing)
    except RefusedError:
        return "unknown"
    assert state is not None
    if held.message_id is not None:
        return "done"
    if (
        mailing.kind is DocumentKind.INVOICE
        and state.invoices[mailing.document_id].status is InvoiceStatus.VOID
    ):
        return "void"
    return None


def _mailed_event(
    state: CorporationState,
    mailing: DocumentMailing,
    receipt: MailReceipt,
    origin: Origin,
    now: datetime,
) -> InvoiceMailed | CreditNoteMailed:
    envelope = recorded_now(state.corporation_id, now, origin)
    # Both events carry the receipt in the same fields; each names its document.
    sent: dict[str, Any] = {**asdict(receipt), "corporation_id": state.corporation_id, "at": now}
    if mailing.kind is DocumentKind.INVOICE:
        return InvoiceMailed(
            **envelope,
            payload=InvoiceMailedPayload(
                invoice_id=mailing.document_id, mailing_id=mailing.mailing_id, **sent
            ),
        )
    note = state.credit_notes[mailing.document_id]
    return CreditNoteMailed(
        **envelope,
        payload=CreditNoteMailedPayload(
            credit_note_id=note.credit_note_id, invoice_id=note.invoice_id, **sent
        ),
    )


def decide_document_mailed(
    state: CorporationState | None,
    *,
    mailing: DocumentMailing,
    receipt: MailReceipt,
    origin: Origin,
    now: datetime,
) -> Decision[Mailing]:
    """Record that the SMTP server accepted one mailing of an invoice or a
    credit note; once per mailing (a second record is nothing)."""
    held = mailing_of(state, mailing)
    assert state is not None
    if held.message_id is not None:
        return Decision([], held)
    event = _mailed_event(state, mailing, receipt, origin, now)
    return Decision([event], mailing_of(evolve_mailing(state, event), mailing))


def new_mailing_id(invoice_id: str, correlation_id: str) -> str:
    """A re-send's id: the same request (its correlation id) names the same
    mailing, so a retried request asks for one e-mail, not two."""
    return hashlib.sha256(f"{invoice_id}/{correlation_id}".encode()).hexdigest()[:32]


def decide_mailing_request(
    state: CorporationState | None,
    *,
    invoice_id: str,
    mailing_id: str,
    origin: Origin,
    now: datetime,
) -> Decision[InvoiceSource]:
    """Ask for one more e-mail of an issued or paid invoice; the same
    mailing id again records nothing. A draft (no number) and a void invoice
    (cancelled) are not mailed: 409."""
    source = invoice_source(state, invoice_id)
    assert state is not None
    if state.invoices[invoice_id].status is InvoiceStatus.VOID:
        raise conflict(f"invoice {invoice_id!r} is VOID: it is not mailed again")
    if mailing_id in source.mailings:
        return Decision([], source)
    event = InvoiceMailingRequested(
        **recorded_now(state.corporation_id, now, origin),
        payload=InvoiceMailingRequestedPayload(
            invoice_id=invoice_id,
            corporation_id=state.corporation_id,
            mailing_id=mailing_id,
            at=now,
        ),
    )
    after = evolve_mailing(state, event)
    return Decision([event], after.invoice_sources[invoice_id])


def shown_mailings(source: InvoiceSource) -> list[dict[str, Any]]:
    """An invoice's mailings in the order they were requested (the log's:
    the map keeps it), as the ops API shows them."""
    return [m.model_dump(mode="json") for m in source.mailings.values()]
