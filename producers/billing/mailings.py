"""E-mails of a corporation's documents: an invoice's mailings (its issue's
own and each re-send asked for, docs/adr/0040, 3 and 4) and an issued
credit note's one e-mail (docs/adr/0041, 13). Each is recorded once the
SMTP server accepted it, with the recipient, the Message-ID and the
SHA-256 of the PDF and CSV sent. The mailer is
processors/invoice_mailer.py. Pure: no I/O, the clock passed in.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from producers.billing.credit_notes import require_credit_note
from producers.billing.invoices import invoice_source
from producers.billing.state import CorporationState, CreditNoteState, InvoiceSource, Mailing
from producers.write_path import Decision, Origin, conflict, recorded_now, unknown
from schemas.events.billing import (
    FIRST_MAILING,
    CreditNoteMailed,
    CreditNoteMailedPayload,
    CreditNoteStatus,
    InvoiceMailed,
    InvoiceMailedPayload,
    InvoiceMailingRequested,
    InvoiceMailingRequestedPayload,
    InvoiceStatus,
)

InvoiceMailEvents = (InvoiceMailingRequested, InvoiceMailed)


def _evolve_mailing(
    state: CorporationState, event: InvoiceMailingRequested | InvoiceMailed
) -> CorporationState:
    held = state.invoice_sources.get(event.payload.invoice_id)
    if held is None:
        return state
    if isinstance(event, InvoiceMailingRequested):
        r = event.payload
        mailing = Mailing(mailing_id=r.mailing_id, requested_at=r.at)
    else:
        m = event.payload
        requested = held.mailings.get(m.mailing_id)
        mailing = Mailing(
            mailing_id=m.mailing_id,
            requested_at=requested.requested_at if requested else m.at,
            recipient=m.recipient,
            message_id=m.message_id,
            pdf_sha256=m.pdf_sha256,
            csv_sha256=m.csv_sha256,
            mailed_at=m.at,
        )
    source = held.model_copy(update={"mailings": {**held.mailings, mailing.mailing_id: mailing}})
    return state.model_copy(
        update={"invoice_sources": {**state.invoice_sources, held.drafted.invoice_id: source}}
    )


def evolve_mailing(
    state: CorporationState, event: InvoiceMailingRequested | InvoiceMailed | CreditNoteMailed
) -> CorporationState:
    """Fold a mailing's request and its e-mail, of an invoice or a credit note."""
    if isinstance(event, CreditNoteMailed):
        return _evolve_credit_note_mailed(state, event)
    return _evolve_mailing(state, event)


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


def decide_invoice_mailed(
    state: CorporationState | None,
    *,
    invoice_id: str,
    mailing_id: str,
    recipient: str,
    message_id: str,
    pdf_sha256: str,
    csv_sha256: str,
    origin: Origin,
    now: datetime,
) -> Decision[InvoiceSource]:
    """Record that the SMTP server accepted one mailing; once per mailing."""
    source = invoice_source(state, invoice_id)
    assert state is not None
    held = source.mailings.get(mailing_id)
    if held is None:
        raise unknown(f"mailing {mailing_id!r} of invoice {invoice_id!r}")
    if held.message_id is not None:
        return Decision([], source)
    event = InvoiceMailed(
        **recorded_now(state.corporation_id, now, origin),
        payload=InvoiceMailedPayload(
            invoice_id=invoice_id,
            corporation_id=state.corporation_id,
            mailing_id=mailing_id,
            recipient=recipient,
            message_id=message_id,
            pdf_sha256=pdf_sha256,
            csv_sha256=csv_sha256,
            at=now,
        ),
    )
    after = evolve_mailing(state, event)
    return Decision([event], after.invoice_sources[invoice_id])


def shown_mailings(source: InvoiceSource) -> list[dict[str, Any]]:
    """An invoice's mailings in the order they were requested (the log's:
    the map keeps it), as the ops API shows them."""
    return [m.model_dump(mode="json") for m in source.mailings.values()]


def _evolve_credit_note_mailed(
    state: CorporationState, event: CreditNoteMailed
) -> CorporationState:
    m = event.payload
    held = state.credit_notes.get(m.credit_note_id)
    if held is None:
        return state
    mailed = Mailing(
        mailing_id=FIRST_MAILING,
        requested_at=held.issued_at or m.at,
        recipient=m.recipient,
        message_id=m.message_id,
        pdf_sha256=m.pdf_sha256,
        csv_sha256=m.csv_sha256,
        mailed_at=m.at,
    )
    note = held.model_copy(update={"mailed": mailed})
    return state.model_copy(
        update={"credit_notes": {**state.credit_notes, note.credit_note_id: note}}
    )


def decide_credit_note_mailed(
    state: CorporationState | None,
    *,
    credit_note_id: str,
    recipient: str,
    message_id: str,
    pdf_sha256: str,
    csv_sha256: str,
    origin: Origin,
    now: datetime,
) -> Decision[CreditNoteState]:
    """Record that the SMTP server accepted an issued credit note's e-mail;
    once (a second record is nothing)."""
    current, held = require_credit_note(state, credit_note_id)
    if held.status is not CreditNoteStatus.ISSUED:
        raise conflict(f"credit note {credit_note_id!r} is {held.status.value}, not ISSUED")
    if held.mailed is not None:
        return Decision([], held)
    event = CreditNoteMailed(
        **recorded_now(current.corporation_id, now, origin),
        payload=CreditNoteMailedPayload(
            credit_note_id=credit_note_id,
            corporation_id=current.corporation_id,
            invoice_id=held.invoice_id,
            recipient=recipient,
            message_id=message_id,
            pdf_sha256=pdf_sha256,
            csv_sha256=csv_sha256,
            at=now,
        ),
    )
    after = evolve_mailing(current, event)
    return Decision([event], after.credit_notes[credit_note_id])
