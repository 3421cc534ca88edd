"""The billing slice's state (docs/adr/0035, 1): one aggregate per
corporation, keyed by its id, holding its members, charges, invoices (with
what their documents are rendered from and their mailings) and credit
notes. Models only: each concern folds its own events into this state
(``evolve_*`` in its module) and producers/billing/aggregate.py dispatches
to them.

Why the state holds what it holds is told where it grew: the charges'
details and the invoices (docs/adr/0036, 10), the invoices' sources and
mailings (docs/adr/0040, 1), the credit notes (docs/adr/0041, 11 and 12).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from producers.write_path import unknown
from schemas.events.billing import (
    Address,
    Contract,
    CorporationStatus,
    CreditNoteLine,
    CreditNoteStatus,
    InvoiceDraftedPayload,
    InvoiceIssuedPayload,
    InvoiceStatus,
    MemberStatus,
    PaymentMethod,
)


class MemberState(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    member_id: str
    name: str
    email: str
    cost_centre: str | None = None
    status: MemberStatus
    invitation_id: str
    expires_at: datetime
    rfid_uid: str | None = None
    # The invitation whose e-mail the SMTP server accepted, if any.
    mailed_invitation_id: str | None = None
    token_uid: str | None = None
    token_type: str | None = None
    invited_at: datetime
    activated_at: datetime | None = None


class ChargeState(BaseModel):
    """What a later charge, reversal or invoice needs of a recorded charge.
    The fields after ``reversed_by`` came with invoices (docs/adr/0036)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    member_id: str
    amount: Decimal
    reversed_by: str | None = None
    cost_centre: str | None = None
    energy_kwh: Decimal | None = None
    price_per_kwh: Decimal | None = None
    # When the session ended: the month whose invoice may take the charge.
    ended_at: datetime | None = None
    reversal_amount: Decimal | None = None


class InvoiceState(BaseModel):
    """An invoice as its corporation's aggregate holds it: the summary and
    its state; the lines are in its ``InvoiceDrafted`` event (and the
    MySQL rows folded from it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    invoice_id: str
    corporation_id: str
    month: str
    period_start: datetime
    period_end: datetime
    status: InvoiceStatus
    buyer_legal_name: str
    currency: str
    net_total: Decimal
    vat_total: Decimal
    gross_total: Decimal
    payment_term_days: int
    lines: int
    number: str | None = None
    issue_date: date | None = None
    due_date: date | None = None
    paid_on: date | None = None
    payment_reference: str | None = None
    void_reason: str | None = None
    drafted_at: datetime
    updated_at: datetime
    # Credit notes (docs/adr/0041): the invoice's VAT rate, how many credit
    # notes it has had (their ids count on), what its issued credit notes
    # credited, and the net that requested or approved ones reserve.
    vat_rate: Decimal | None = None
    credit_notes: int = 0
    credited_net: Decimal = Decimal(0)
    credited_vat: Decimal = Decimal(0)
    credited_gross: Decimal = Decimal(0)
    credited_count: int = 0
    reserved_net: Decimal = Decimal(0)


class CreditNoteState(BaseModel):
    """A credit note as its corporation's aggregate holds it (docs/adr/0041).
    Who requested and who decided are the envelopes' actors."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    credit_note_id: str
    corporation_id: str
    invoice_id: str
    invoice_number: str
    invoice_issue_date: date
    status: CreditNoteStatus
    currency: str
    lines: list[CreditNoteLine]
    net_total: Decimal
    reason: str
    requested_by: str | None = None
    requested_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    reject_reason: str | None = None
    number: str | None = None
    issue_date: date | None = None
    due_date: date | None = None
    vat_rate: Decimal | None = None
    vat_total: Decimal | None = None
    gross_total: Decimal | None = None
    settles_invoice: bool | None = None
    # How many roundings its VAT settles (its document's BR-S-09 check).
    vat_roundings: int | None = None
    # When it was issued (its ``CreditNoteIssued``).
    issued_at: datetime | None = None
    # Its one e-mail, once the SMTP server accepted it (``CreditNoteMailed``).
    mailed: Mailing | None = None
    updated_at: datetime


class Mailing(BaseModel):
    """One mailing of an invoice (docs/adr/0040): requested (the issue's
    own, or a re-send), then mailed once the SMTP server accepted it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mailing_id: str
    requested_at: datetime
    recipient: str | None = None
    message_id: str | None = None
    pdf_sha256: str | None = None
    csv_sha256: str | None = None
    mailed_at: datetime | None = None


class InvoiceSource(BaseModel):
    """What an invoice's files are rendered from (docs/adr/0040): its
    ``InvoiceDrafted`` content (without the CDR keys, which no document
    shows) and its ``InvoiceIssued`` number and dates, exactly as the events
    carry them, and its mailings by id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    drafted: InvoiceDraftedPayload
    issued: InvoiceIssuedPayload | None = None
    mailings: dict[str, Mailing] = Field(default_factory=dict)


class CorporationState(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    corporation_id: str
    legal_name: str
    country: str
    registration_number: str
    vat_id: str
    billing_address: Address
    billing_email: str
    currency: str
    payment_method: PaymentMethod
    contract: Contract
    status: CorporationStatus = CorporationStatus.ACTIVE
    status_reason: str | None = None
    # When the status last changed (a closed corporation pays no monthly
    # fee for the months after it closed).
    status_since: datetime | None = None
    members: dict[str, MemberState] = Field(default_factory=dict)
    # Every CDR charged, by CDR key: a CDR read twice is charged once, and a
    # Credit CDR finds the charge it reverses.
    charges: dict[str, ChargeState] = Field(default_factory=dict)
    # Every invoice of the corporation, by invoice id (docs/adr/0036).
    invoices: dict[str, InvoiceState] = Field(default_factory=dict)
    # The invoice each charge is on, and the one each reversal is on, by CDR
    # key; a charge not here is open (on no invoice yet, or on a void one).
    # Kept apart from the charges so that a draft or a void changes two
    # plain maps, not a thousand charge models.
    charge_invoices: dict[str, str] = Field(default_factory=dict)
    reversal_invoices: dict[str, str] = Field(default_factory=dict)
    registered_at: datetime
    updated_at: datetime
    # Each invoice's document content and mailings, by invoice id
    # (docs/adr/0040): its files are rendered from here.
    invoice_sources: dict[str, InvoiceSource] = Field(default_factory=dict)
    # Credit notes by id, and the credit note (requested, approved or
    # issued; not rejected) each credited charge is on, by CDR key
    # (docs/adr/0041).
    credit_notes: dict[str, CreditNoteState] = Field(default_factory=dict)
    credited_charges: dict[str, str] = Field(default_factory=dict)


def require_corporation(state: CorporationState | None, corporation_id: str) -> CorporationState:
    if state is None:
        raise unknown(f"corporation {corporation_id!r}")
    return state
