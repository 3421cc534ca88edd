"""Credit notes (docs/adr/0041): request (whole sessions of an issued or
paid invoice, or an amount, at most what remains), approve (four eyes),
reject, and issue with the number of their own series and VAT decided at
issue, so an invoice and its credit notes net to zero. Decided on the
invoice's aggregate; the three writes of an approval are
producers/credit_notes.py. ``credit_note_source`` is what an issued
credit note's files are rendered from (12). Pure: no I/O, the clock
passed in.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from producers.billing.invoices import corporation_of_invoice, require_invoice, vat_of
from producers.billing.state import (
    ChargeState,
    CorporationState,
    CreditNoteState,
    InvoiceState,
    require_corporation,
)
from producers.write_path import Decision, Origin, RefusedError, conflict, recorded_now, unknown
from schemas.events.billing import (
    CreditNoteApproved,
    CreditNoteDecidedPayload,
    CreditNoteEvent,
    CreditNoteIssued,
    CreditNoteIssuedPayload,
    CreditNoteLine,
    CreditNoteLineKind,
    CreditNoteRejected,
    CreditNoteRejectedPayload,
    CreditNoteRequested,
    CreditNoteRequestedPayload,
    CreditNoteStatus,
    InvoiceDraftedPayload,
    InvoiceStatus,
)
from schemas.events.envelope import Actor
from schemas.ocpi.status_codes import OcpiStatus

CreditNoteEvents = (CreditNoteRequested, CreditNoteApproved, CreditNoteRejected, CreditNoteIssued)

# Invoices a credit note may correct: issued, paid or not (a refund).
_CREDITABLE = frozenset({InvoiceStatus.ISSUED, InvoiceStatus.PAID})


def credit_note_id_of(invoice_id: str, n: int) -> str:
    """The ``n``-th credit note of an invoice (from 1)."""
    return f"{invoice_id}-cn{n}"


def invoice_of_credit_note(credit_note_id: str) -> str:
    return credit_note_id.rsplit("-", 1)[0]


def corporation_of_credit_note(credit_note_id: str) -> str:
    return corporation_of_invoice(invoice_of_credit_note(credit_note_id))


def _actor_name(event: CreditNoteEvent) -> str | None:
    return str(event.actor) if event.actor is not None else None


def evolve_credit_note(state: CorporationState, event: CreditNoteEvent) -> CorporationState:
    invoice = state.invoices.get(event.payload.invoice_id)
    if invoice is None:
        return state
    credited = state.credited_charges
    if isinstance(event, CreditNoteRequested):
        r = event.payload
        note = CreditNoteState(
            credit_note_id=r.credit_note_id,
            corporation_id=r.corporation_id,
            invoice_id=r.invoice_id,
            invoice_number=r.invoice_number,
            invoice_issue_date=r.invoice_issue_date,
            status=CreditNoteStatus.REQUESTED,
            currency=r.currency,
            lines=r.lines,
            net_total=r.net_total,
            reason=r.reason,
            requested_by=_actor_name(event),
            requested_at=r.at,
            updated_at=r.at,
        )
        invoice = invoice.model_copy(
            update={
                "credit_notes": invoice.credit_notes + 1,
                "reserved_net": invoice.reserved_net + r.net_total,
            }
        )
        sessions = [line.cdr_key for line in r.lines if line.cdr_key is not None]
        credited = credited | dict.fromkeys(sessions, r.credit_note_id)
    else:
        held = state.credit_notes.get(event.payload.credit_note_id)
        if held is None:
            return state
        if isinstance(event, CreditNoteApproved):
            note = held.model_copy(
                update={
                    "status": CreditNoteStatus.APPROVED,
                    "decided_by": _actor_name(event),
                    "decided_at": event.payload.at,
                    "updated_at": event.payload.at,
                }
            )
        elif isinstance(event, CreditNoteRejected):
            j = event.payload
            note = held.model_copy(
                update={
                    "status": CreditNoteStatus.REJECTED,
                    "decided_by": _actor_name(event),
                    "decided_at": j.at,
                    "reject_reason": j.reason,
                    "updated_at": j.at,
                }
            )
            # Its amount and sessions are free again.
            invoice = invoice.model_copy(
                update={"reserved_net": invoice.reserved_net - held.net_total}
            )
            credited = {k: n for k, n in credited.items() if n != held.credit_note_id}
        else:
            i = event.payload
            note = held.model_copy(
                update={
                    "status": CreditNoteStatus.ISSUED,
                    "number": i.number,
                    "issue_date": i.issue_date,
                    "due_date": i.due_date,
                    "vat_rate": i.vat_rate,
                    "vat_total": i.vat_total,
                    "gross_total": i.gross_total,
                    "settles_invoice": i.settles_invoice,
                    "vat_roundings": i.vat_roundings,
                    "issued_at": i.at,
                    "updated_at": i.at,
                }
            )
            invoice = invoice.model_copy(
                update={
                    "reserved_net": invoice.reserved_net - held.net_total,
                    "credited_net": invoice.credited_net + i.net_total,
                    "credited_vat": invoice.credited_vat + i.vat_total,
                    "credited_gross": invoice.credited_gross + i.gross_total,
                    "credited_count": invoice.credited_count + 1,
                }
            )
    return state.model_copy(
        update={
            "credit_notes": {**state.credit_notes, note.credit_note_id: note},
            "invoices": {**state.invoices, invoice.invoice_id: invoice},
            "credited_charges": credited,
        }
    )


class CreditNoteRequest(BaseModel):
    """``POST /ops/invoices/{id}/credit-notes``: whole sessions of the
    invoice (their CDR keys) or an amount of it (net, excl. VAT, in cents),
    and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sessions: (
        Annotated[list[Annotated[str, Field(min_length=1, max_length=160)]], Field(min_length=1)]
        | None
    ) = None
    amount: (
        Annotated[Decimal, Field(gt=0, max_digits=16, decimal_places=2, allow_inf_nan=False)] | None
    ) = None
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class CreditNoteRejection(BaseModel):
    """``POST /ops/credit-notes/{id}/reject``: a reason is required."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: Annotated[str, Field(min_length=1, max_length=500)]


def remaining_net(invoice: InvoiceState) -> Decimal:
    """What is left to credit of an invoice, net: its net total less what
    issued credit notes credited and what pending ones reserve."""
    return invoice.net_total - invoice.credited_net - invoice.reserved_net


def _bad(message: str) -> RefusedError:
    return RefusedError(
        OcpiStatus.INVALID_PARAMETERS, f"invalid or missing parameters: {message}", 400
    )


def _session_line(state: CorporationState, key: str, charge: ChargeState) -> CreditNoteLine:
    member = state.members.get(charge.member_id)
    name = member.name if member is not None else charge.member_id
    who = name + (f" ({charge.cost_centre})" if charge.cost_centre else "")
    ended = f", ended {charge.ended_at.astimezone(UTC).date()}" if charge.ended_at else ""
    return CreditNoteLine(
        kind=CreditNoteLineKind.SESSION,
        description=f"Refund of session {key.rsplit('/', 1)[-1]}, {who}{ended}"[:300],
        cdr_key=key,
        member_id=charge.member_id,
        member_name=name,
        cost_centre=charge.cost_centre,
        energy_kwh=charge.energy_kwh or Decimal(0),
        unit_price=charge.price_per_kwh or Decimal(0),
        net=charge.amount,
    )


def decide_credit_request(
    state: CorporationState | None,
    *,
    invoice_id: str,
    body: CreditNoteRequest,
    origin: Origin,
    now: datetime,
    actor: Actor | None = None,
) -> Decision[CreditNoteState]:
    """Request a credit note of an issued or paid invoice: whole sessions
    on it (their charges' amounts) or a net amount, at most what remains
    uncredited (pending requests reserve theirs). Refused with nothing
    recorded otherwise."""
    current, invoice = require_invoice(state, invoice_id)
    if invoice.status not in _CREDITABLE:
        raise conflict(
            f"invoice {invoice_id!r} is {invoice.status.value}: only an issued or paid "
            "invoice gets a credit note"
        )
    if (body.sessions is None) == (body.amount is None):
        raise _bad("give either sessions (CDR keys on the invoice) or an amount, not both")
    assert invoice.number is not None and invoice.issue_date is not None
    lines: list[CreditNoteLine] = []
    if body.sessions is not None:
        if len(set(body.sessions)) != len(body.sessions):
            raise _bad("sessions: a session is named twice")
        for key in body.sessions:
            charge = current.charges.get(key)
            if charge is None or current.charge_invoices.get(key) != invoice_id:
                raise _bad(f"sessions: {key!r} is not a session on invoice {invoice.number}")
            if key in current.credited_charges:
                raise conflict(
                    f"session {key!r} is already on credit note {current.credited_charges[key]!r}"
                )
            if charge.reversed_by is not None and charge.reversal_amount:
                raise conflict(f"session {key!r} was reversed by Credit CDR {charge.reversed_by!r}")
            lines.append(_session_line(current, key, charge))
        net = sum((line.net for line in lines), Decimal(0))
    else:
        assert body.amount is not None
        net = body.amount
        lines.append(
            CreditNoteLine(
                kind=CreditNoteLineKind.AMOUNT,
                description=f"Partial refund of invoice {invoice.number}: {body.reason}"[:300],
                energy_kwh=Decimal(1),
                unit_price=net,
                net=net,
            )
        )
    if net <= 0:
        raise conflict(f"nothing to credit: the sessions named total {net}")
    left = remaining_net(invoice)
    if net > left:
        raise conflict(
            f"{net} is more than remains to credit of invoice {invoice.number}: "
            f"{max(left, Decimal(0))} {invoice.currency} (net, excl. VAT; pending credit "
            "notes included)"
        )
    credit_note_id = credit_note_id_of(invoice_id, invoice.credit_notes + 1)
    event = CreditNoteRequested(
        **recorded_now(current.corporation_id, now, origin),
        actor=actor,
        payload=CreditNoteRequestedPayload(
            credit_note_id=credit_note_id,
            corporation_id=current.corporation_id,
            invoice_id=invoice_id,
            invoice_number=invoice.number,
            invoice_issue_date=invoice.issue_date,
            currency=invoice.currency,
            lines=lines,
            net_total=net,
            reason=body.reason,
            at=now,
        ),
    )
    return _credit_note_decided(current, credit_note_id, [event])


def require_credit_note(
    state: CorporationState | None, credit_note_id: str
) -> tuple[CorporationState, CreditNoteState]:
    current = require_corporation(state, corporation_of_credit_note(credit_note_id))
    held = current.credit_notes.get(credit_note_id)
    if held is None:
        raise unknown(f"credit note {credit_note_id!r}")
    return current, held


def _credit_note_decided(
    state: CorporationState, credit_note_id: str, events: list[CreditNoteEvent]
) -> Decision[CreditNoteState]:
    after = state
    for event in events:
        after = evolve_credit_note(after, event)
    return Decision(events, after.credit_notes[credit_note_id])


def _already_decided(held: CreditNoteState) -> RefusedError:
    by = f" by {held.decided_by}" if held.decided_by else ""
    number = f" as {held.number}" if held.number else ""
    return conflict(
        f"credit note {held.credit_note_id!r} was already decided: {held.status.value}{number}{by}"
    )


def decide_credit_approve(
    state: CorporationState | None,
    *,
    credit_note_id: str,
    actor: Actor | None,
    four_eyes: bool,
    origin: Origin,
    now: datetime,
) -> Decision[CreditNoteState]:
    """Approve a requested credit note. With ``four_eyes`` the approver must
    be another operator than the requester. An approved one not yet issued
    (a run stopped before its number) answers as it is, so the caller can
    finish issuing it; issued or rejected ones are refused."""
    current, held = require_credit_note(state, credit_note_id)
    if held.status is CreditNoteStatus.APPROVED:
        return Decision([], held)
    if held.status is not CreditNoteStatus.REQUESTED:
        raise _already_decided(held)
    if actor is None:
        raise RefusedError(
            OcpiStatus.CLIENT_ERROR, "a credit note is approved by a known operator", 403
        )
    if four_eyes and str(actor) == held.requested_by:
        raise RefusedError(
            OcpiStatus.CLIENT_ERROR,
            f"{actor} requested credit note {credit_note_id!r} and cannot approve it too "
            "(four eyes: OCPI_HUB_BILLING_CREDIT_NOTE_FOUR_EYES)",
            403,
        )
    invoice = current.invoices[held.invoice_id]
    if invoice.status not in _CREDITABLE:
        raise conflict(f"invoice {invoice.invoice_id!r} is {invoice.status.value}")
    event = CreditNoteApproved(
        **recorded_now(current.corporation_id, now, origin),
        actor=actor,
        payload=CreditNoteDecidedPayload(
            credit_note_id=credit_note_id,
            corporation_id=current.corporation_id,
            invoice_id=held.invoice_id,
            at=now,
        ),
    )
    return _credit_note_decided(current, credit_note_id, [event])


def decide_credit_reject(
    state: CorporationState | None,
    *,
    credit_note_id: str,
    body: CreditNoteRejection,
    actor: Actor | None,
    origin: Origin,
    now: datetime,
) -> Decision[CreditNoteState]:
    """Reject a requested credit note (the requester may withdraw their
    own: nothing is credited either way); its amount is free again."""
    current, held = require_credit_note(state, credit_note_id)
    if held.status is not CreditNoteStatus.REQUESTED:
        raise _already_decided(held)
    if actor is None:
        raise RefusedError(
            OcpiStatus.CLIENT_ERROR, "a credit note is rejected by a known operator", 403
        )
    event = CreditNoteRejected(
        **recorded_now(current.corporation_id, now, origin),
        actor=actor,
        payload=CreditNoteRejectedPayload(
            credit_note_id=credit_note_id,
            corporation_id=current.corporation_id,
            invoice_id=held.invoice_id,
            reason=body.reason,
            at=now,
        ),
    )
    return _credit_note_decided(current, credit_note_id, [event])


def credit_note_vat(invoice: InvoiceState, net: Decimal) -> tuple[Decimal, bool, int]:
    """The VAT of a credit note of ``net`` on ``invoice`` as its issued
    credit notes left it: (VAT, settles the invoice, roundings). A credit of
    all that remains takes exactly the VAT that remains, so the invoice and
    its credit notes net to zero; any other is ``net`` x the invoice's rate,
    rounded half up to the cent once."""
    rate = invoice.vat_rate if invoice.vat_rate is not None else Decimal(0)
    left = invoice.vat_total - invoice.credited_vat
    if net == invoice.net_total - invoice.credited_net:
        return left, True, invoice.credited_count + 1
    vat = vat_of(net, rate)
    if vat > left:
        # Tiny credits, each rounded up, can outrun the invoice's VAT (five
        # of 0.05 at 10 % would credit 0.05 of an invoice's 0.03): never
        # credit more VAT than remains, so the last one is never negative.
        return left, False, invoice.credited_count + 1
    return vat, False, 1


def decide_credit_issue(
    state: CorporationState | None,
    *,
    credit_note_id: str,
    number: str,
    issue_date: date,
    origin: Origin,
    now: datetime,
) -> Decision[CreditNoteState]:
    """Issue an approved credit note with the number the numbering
    aggregate gave it: its VAT (``credit_note_vat``) and dates; once."""
    current, held = require_credit_note(state, credit_note_id)
    if held.status is CreditNoteStatus.ISSUED:
        if held.number != number:
            raise conflict(f"credit note {credit_note_id!r} has number {held.number}, not {number}")
        return Decision([], held)
    if held.status is not CreditNoteStatus.APPROVED:
        raise conflict(f"credit note {credit_note_id!r} is {held.status.value}, not APPROVED")
    invoice = current.invoices[held.invoice_id]
    vat, settles, roundings = credit_note_vat(invoice, held.net_total)
    event = CreditNoteIssued(
        **recorded_now(current.corporation_id, now, origin),
        payload=CreditNoteIssuedPayload(
            credit_note_id=credit_note_id,
            corporation_id=current.corporation_id,
            invoice_id=held.invoice_id,
            number=number,
            issue_date=issue_date,
            due_date=issue_date + timedelta(days=invoice.payment_term_days),
            vat_rate=invoice.vat_rate if invoice.vat_rate is not None else Decimal(0),
            net_total=held.net_total,
            vat_total=vat,
            gross_total=held.net_total + vat,
            settles_invoice=settles,
            vat_roundings=roundings,
            at=now,
        ),
    )
    return _credit_note_decided(current, credit_note_id, [event])


def shown_credit_note(note: CreditNoteState) -> dict[str, Any]:
    return note.model_dump(mode="json")


class CreditNoteSource(BaseModel):
    """What an issued credit note's files are rendered from: the
    ``InvoiceDrafted`` content of the invoice it corrects (the buyer as
    invoiced, the period) and its own two events' payloads, rebuilt field
    for field from the state that folded them (docs/adr/0041, 12)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    invoice: InvoiceDraftedPayload
    requested: CreditNoteRequestedPayload
    issued: CreditNoteIssuedPayload


def credit_note_source(state: CorporationState | None, credit_note_id: str) -> CreditNoteSource:
    """An issued credit note's source; ``RefusedError`` 404 for an unknown
    credit note and 409 for one not issued (it has no number)."""
    current, note = require_credit_note(state, credit_note_id)
    invoice = current.invoice_sources.get(note.invoice_id)
    if (
        note.status is not CreditNoteStatus.ISSUED
        or invoice is None
        or note.number is None
        or note.issue_date is None
        or note.due_date is None
        or note.vat_rate is None
        or note.vat_total is None
        or note.gross_total is None
        or note.settles_invoice is None
        or note.vat_roundings is None
        or note.issued_at is None
    ):
        raise conflict(
            f"credit note {credit_note_id!r} is {note.status.value}: "
            "only an issued credit note has a number and documents"
        )
    return CreditNoteSource(
        invoice=invoice.drafted,
        requested=CreditNoteRequestedPayload(
            credit_note_id=note.credit_note_id,
            corporation_id=note.corporation_id,
            invoice_id=note.invoice_id,
            invoice_number=note.invoice_number,
            invoice_issue_date=note.invoice_issue_date,
            currency=note.currency,
            lines=note.lines,
            net_total=note.net_total,
            reason=note.reason,
            at=note.requested_at,
        ),
        issued=CreditNoteIssuedPayload(
            credit_note_id=note.credit_note_id,
            corporation_id=note.corporation_id,
            invoice_id=note.invoice_id,
            number=note.number,
            issue_date=note.issue_date,
            due_date=note.due_date,
            vat_rate=note.vat_rate,
            net_total=note.net_total,
            vat_total=note.vat_total,
            gross_total=note.gross_total,
            settles_invoice=note.settles_invoice,
            vat_roundings=note.vat_roundings,
            at=note.issued_at,
        ),
    )
