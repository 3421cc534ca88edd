"""An issued invoice of the billing slice (docs/adr/0036) as the document
the documents render (producers/invoice_documents.py, docs/adr/0037).

Taken from the invoice's two events only (``InvoiceDrafted``,
``InvoiceIssued``), so a document made again from the log is the same
document. Every figure is the slice's; ``InvoiceDocument`` checks they agree
(EN 16931 rules) and refuses to exist otherwise. The seller and its account
are ours, from the settings (``invoice_documents.seller_from``).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from producers.invoice_documents import (
    CreditTransfer,
    DocumentKind,
    InvoiceDocument,
    InvoiceReference,
    Party,
    PostalAddress,
    UnitCode,
    VatBreakdown,
)
from producers.invoice_documents import InvoiceLine as DocumentLine
from schemas.events.billing import (
    CreditNoteIssuedPayload,
    CreditNoteLine,
    CreditNoteLineKind,
    CreditNoteRequestedPayload,
    InvoiceDraftedPayload,
    InvoiceIssuedPayload,
    InvoiceLine,
    InvoiceLineKind,
)


def describe(line: InvoiceLine) -> str:
    """A line's text: what, for whom (and the cost centre), how many sessions."""
    who = line.member_name + (f" ({line.cost_centre})" if line.cost_centre else "")
    if line.kind is InvoiceLineKind.MONTHLY_FEE:
        return f"Monthly fee, {who}"
    sessions = f"{line.sessions} session{'s' if line.sessions != 1 else ''}"
    if line.kind is InvoiceLineKind.REVERSALS:
        return f"Charging reversed (Credit CDRs), {who}: {sessions}"
    return f"Charging, {who}: {sessions}"


def _line(n: int, line: InvoiceLine, vat_rate: Decimal) -> DocumentLine:
    fee = line.kind is InvoiceLineKind.MONTHLY_FEE
    return DocumentLine(
        line_id=str(n),
        description=describe(line),
        # A fee is one month at the fee; energy is the kWh at the price per
        # kWh (negative for reversals: the price stays positive, BR-27).
        quantity=Decimal(1) if fee else line.energy_kwh,
        unit_code=UnitCode.C62 if fee else UnitCode.KWH,
        unit_price=line.unit_price,
        net_amount=line.net,
        vat_rate=vat_rate,
        # The net of energy lines adds charges rounded once each.
        charges=1 if fee else max(line.sessions, 1),
    )


def _buyer(drafted: InvoiceDraftedPayload) -> Party:
    buyer = drafted.buyer
    return Party(
        legal_name=buyer.legal_name,
        address=PostalAddress(
            street=buyer.address.street,
            postal_code=buyer.address.postal_code,
            city=buyer.address.city,
            country=buyer.address.country,
        ),
        vat_id=buyer.vat_id,
        registration_id=buyer.registration_number,
        email=buyer.billing_email,
    )


def document_of(
    drafted: InvoiceDraftedPayload,
    issued: InvoiceIssuedPayload,
    seller: Party,
    means: CreditTransfer,
) -> InvoiceDocument:
    """The document of an issued invoice. Raises ``ValueError`` when the two
    events are not of one invoice, and pydantic's ``ValidationError`` when a
    figure cannot be shown (e.g. a VAT rate of 0, which the documents do
    not take yet)."""
    if drafted.invoice_id != issued.invoice_id:
        raise ValueError(f"{issued.invoice_id} is not the invoice {drafted.invoice_id}")
    rate = drafted.contract.vat_rate
    return InvoiceDocument(
        kind=DocumentKind.INVOICE,
        number=issued.number,
        issue_date=issued.issue_date,
        due_date=issued.due_date,
        period_start=drafted.period_start.date(),
        # The last day of the period (the event's end is the next month's start).
        period_end=(drafted.period_end - timedelta(microseconds=1)).date(),
        currency=drafted.currency,
        seller=seller,
        buyer=_buyer(drafted),
        payment_terms=(
            f"Payable within {drafted.payment_term_days} days of the issue date, "
            f"by {issued.due_date.isoformat()}, quoting invoice {issued.number}."
        ),
        payment_means=means,
        lines=tuple(_line(n, line, rate) for n, line in enumerate(drafted.lines, start=1)),
        vat_breakdown=tuple(
            VatBreakdown(rate=v.rate, taxable_amount=v.base, tax_amount=v.amount)
            for v in drafted.vat
        ),
        net_total=drafted.net_total,
        vat_total=drafted.vat_total,
        gross_total=drafted.gross_total,
        amount_due=drafted.gross_total,
    )


# --- credit notes (docs/adr/0041) -----------------------------------------------------


def _credit_line(n: int, line: CreditNoteLine, vat_rate: Decimal) -> DocumentLine:
    session = line.kind is CreditNoteLineKind.SESSION
    return DocumentLine(
        line_id=str(n),
        description=line.description,
        # A session is its kWh at the invoice's price per kWh (its amount
        # rounded once when charged); an amount is one unit at that amount.
        quantity=line.energy_kwh if session else Decimal(1),
        unit_code=UnitCode.KWH if session else UnitCode.C62,
        unit_price=line.unit_price,
        net_amount=line.net,
        vat_rate=vat_rate,
    )


def credit_note_document_of(
    invoice: InvoiceDraftedPayload,
    requested: CreditNoteRequestedPayload,
    issued: CreditNoteIssuedPayload,
    seller: Party,
    means: CreditTransfer,
) -> InvoiceDocument:
    """The document (kind CREDIT_NOTE, 381) of an issued credit note, from
    its two events and the ``InvoiceDrafted`` of the invoice it corrects
    (the buyer as invoiced, the period): it names that invoice's number and
    issue date (BG-3) and carries positive amounts. Raises ``ValueError``
    when the events are not of one credit note and its invoice."""
    if requested.credit_note_id != issued.credit_note_id:
        raise ValueError(
            f"{issued.credit_note_id} is not the credit note {requested.credit_note_id}"
        )
    if requested.invoice_id != invoice.invoice_id:
        raise ValueError(f"{requested.credit_note_id} does not correct {invoice.invoice_id}")
    rate = issued.vat_rate
    return InvoiceDocument(
        kind=DocumentKind.CREDIT_NOTE,
        number=issued.number,
        issue_date=issued.issue_date,
        due_date=issued.due_date,
        period_start=invoice.period_start.date(),
        period_end=(invoice.period_end - timedelta(microseconds=1)).date(),
        currency=requested.currency,
        seller=seller,
        buyer=_buyer(invoice),
        payment_terms=(
            f"Credit note for invoice {requested.invoice_number} of "
            f"{requested.invoice_issue_date.isoformat()}: {requested.reason}"
        )[:300],
        payment_means=means,
        lines=tuple(_credit_line(n, line, rate) for n, line in enumerate(requested.lines, 1)),
        vat_breakdown=(
            VatBreakdown(
                rate=rate,
                taxable_amount=issued.net_total,
                tax_amount=issued.vat_total,
                roundings=issued.vat_roundings,
            ),
        ),
        net_total=issued.net_total,
        vat_total=issued.vat_total,
        gross_total=issued.gross_total,
        amount_due=issued.gross_total,
        corrects=InvoiceReference(
            number=requested.invoice_number, issue_date=requested.invoice_issue_date
        ),
    )
