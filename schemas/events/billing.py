"""Events of the billing slice (issue 14, docs/adr/0035), on topic
``ocpi-hub.billing-corporations.v1``.

Every event is keyed by the corporation's id: a corporation, its contract
and its members are one aggregate, so a member is never activated after
the corporation was closed, in any order of reading. Amounts are Decimal,
written as strings (never a binary float). No secret is in an event: the
activation link's secret is derived from the invitation id with a key only
our processes hold (``OCPI_HUB_BILLING_LINK_KEY``).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer

from schemas.events.envelope import EventMeta

CORPORATION_ID_PATTERN = r"^[a-z0-9]{12}$"
MEMBER_ID_PATTERN = r"^[a-z0-9]{12}$"

CorporationId = Annotated[str, Field(pattern=CORPORATION_ID_PATTERN)]
MemberId = Annotated[str, Field(pattern=MEMBER_ID_PATTERN)]
Text = Annotated[str, Field(min_length=1, max_length=200)]
# A deliberately plain address check (local@domain.tld, no spaces): the
# real check is the SMTP server accepting the recipient.
Email = Annotated[str, Field(pattern=r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$", max_length=254)]
# Money and rates as exact decimal strings in the JSON form of events.
Money = Annotated[
    Decimal,
    Field(ge=0, max_digits=18, decimal_places=6, allow_inf_nan=False),
    PlainSerializer(lambda d: str(d), return_type=str, when_used="json"),
]


class PaymentMethod(StrEnum):
    """How a corporation pays; one method so far (room for others)."""

    MONTHLY_INVOICE = "MONTHLY_INVOICE"


class CorporationStatus(StrEnum):
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"  # members' tokens blocked; may be reinstated
    CLOSED = "CLOSED"  # for good


class MemberStatus(StrEnum):
    INVITED = "INVITED"
    ACTIVE = "ACTIVE"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Address(_Model):
    street: Text
    postal_code: Annotated[str, Field(min_length=1, max_length=20)]
    city: Text
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]  # ISO 3166-1 alpha-2


class Contract(_Model):
    """What the corporation pays: ``price_per_kwh`` excl. VAT, an optional
    fee per active member and month, the VAT rate (0.21 is 21 %) and the
    payment term in days."""

    price_per_kwh: Money
    monthly_fee_per_member: Money | None = None
    vat_rate: Annotated[Money, Field(le=1)]
    payment_term_days: Annotated[int, Field(ge=0, le=365)]


class CorporationRegisteredPayload(_Model):
    corporation_id: CorporationId
    legal_name: Text
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
    # Both in the compact form python-stdnum gives (no spaces or dots).
    registration_number: Annotated[str, Field(min_length=1, max_length=40)]
    vat_id: Annotated[str, Field(min_length=3, max_length=40)]
    billing_address: Address
    billing_email: Email
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    payment_method: PaymentMethod
    contract: Contract
    at: AwareDatetime


class CorporationRegistered(EventMeta):
    """A corporation became a billing customer (``POST /ops/corporations``)."""

    event_type: Literal["CorporationRegistered"] = "CorporationRegistered"
    schema_version: Literal[1] = 1
    payload: CorporationRegisteredPayload


class CorporationStatusChangedPayload(_Model):
    corporation_id: CorporationId
    status: CorporationStatus
    reason: Annotated[str, Field(max_length=500)] | None = None
    at: AwareDatetime


class CorporationStatusChanged(EventMeta):
    """Suspended, reinstated (ACTIVE again) or closed. The members' tokens
    follow through the tokens slice (their policy), written after this."""

    event_type: Literal["CorporationStatusChanged"] = "CorporationStatusChanged"
    schema_version: Literal[1] = 1
    payload: CorporationStatusChangedPayload


class MemberInvitedPayload(_Model):
    corporation_id: CorporationId
    member_id: MemberId
    name: Text
    email: Email
    cost_centre: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    # A new id per invitation: a re-invitation makes the older link useless.
    invitation_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    expires_at: AwareDatetime
    # The RFID card's uid when the member gets one; else an APP_USER token.
    rfid_uid: Annotated[str, Field(min_length=1, max_length=36)] | None = None
    at: AwareDatetime


class MemberInvited(EventMeta):
    """A member was invited; the billing worker mails the activation link."""

    event_type: Literal["MemberInvited"] = "MemberInvited"
    schema_version: Literal[1] = 1
    payload: MemberInvitedPayload


class InvitationMailedPayload(_Model):
    corporation_id: CorporationId
    member_id: MemberId
    invitation_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    message_id: Annotated[str, Field(min_length=1, max_length=200)]
    at: AwareDatetime


class InvitationMailed(EventMeta):
    """The SMTP server accepted the activation e-mail of one invitation."""

    event_type: Literal["InvitationMailed"] = "InvitationMailed"
    schema_version: Literal[1] = 1
    payload: InvitationMailedPayload


class MemberActivatedPayload(_Model):
    corporation_id: CorporationId
    member_id: MemberId
    invitation_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    # The token of ours the member charges with (tokens slice).
    token_uid: Annotated[str, Field(min_length=1, max_length=36)]
    token_type: Literal["RFID", "APP_USER"]
    at: AwareDatetime


class MemberActivated(EventMeta):
    """The member followed the activation link in time."""

    event_type: Literal["MemberActivated"] = "MemberActivated"
    schema_version: Literal[1] = 1
    payload: MemberActivatedPayload


# A signed amount (a reversal is negative), exact, as a decimal string.
SignedMoney = Annotated[
    Decimal,
    Field(max_digits=18, decimal_places=6, allow_inf_nan=False),
    PlainSerializer(lambda d: str(d), return_type=str, when_used="json"),
]


class ChargeRecordedPayload(_Model):
    """One CDR of a member's token, priced by the corporation's contract:
    ``amount`` = ``energy_kwh`` x ``price_per_kwh``, rounded half up to the
    cent (docs/adr/0035), excl. VAT. ``cdr_cost_excl_vat`` is the CDR's own
    cost, kept for reference; ``role`` says whether we issued the CDR (our
    charger) or a partner CPO sent it."""

    corporation_id: CorporationId
    member_id: MemberId
    cost_centre: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    cdr_key: Annotated[str, Field(min_length=1, max_length=160)]
    role: Literal["issued", "received"]
    token_uid: Annotated[str, Field(min_length=1, max_length=36)]
    token_type: Literal["RFID", "APP_USER"]
    start_date_time: AwareDatetime
    end_date_time: AwareDatetime
    energy_kwh: SignedMoney
    price_per_kwh: Money
    amount: SignedMoney
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    cdr_cost_excl_vat: SignedMoney | None = None
    at: AwareDatetime


class ChargeRecorded(EventMeta):
    """A member's CDR became a charge of the corporation."""

    event_type: Literal["ChargeRecorded"] = "ChargeRecorded"
    schema_version: Literal[1] = 1
    payload: ChargeRecordedPayload


class ChargeReversedPayload(_Model):
    """A Credit CDR reversed the charge of ``cdr_key``: ``amount`` is that
    charge's amount negated, whatever the Credit CDR's own figures."""

    corporation_id: CorporationId
    cdr_key: Annotated[str, Field(min_length=1, max_length=160)]
    credit_cdr_key: Annotated[str, Field(min_length=1, max_length=160)]
    # Zero when the Credit CDR came before the CDR it credits: that CDR
    # is then charged nothing when it comes.
    amount: SignedMoney
    member_id: MemberId
    at: AwareDatetime


class ChargeReversed(EventMeta):
    """A Credit CDR reversed a charge."""

    event_type: Literal["ChargeReversed"] = "ChargeReversed"
    schema_version: Literal[1] = 1
    payload: ChargeReversedPayload


# --- invoices (issue 14, part B; docs/adr/0036) ----------------------------------

MONTH_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
# The invoice of one corporation and month: ``<corporation id>-<YYYYMM>``,
# so a rerun of a close names the same invoice (docs/adr/0036).
INVOICE_ID_PATTERN = r"^[a-z0-9]{12}-[0-9]{4}(0[1-9]|1[0-2])$"
InvoiceId = Annotated[str, Field(pattern=INVOICE_ID_PATTERN)]
Month = Annotated[str, Field(pattern=MONTH_PATTERN)]
# The gap-free number: ``<year of issue>-<sequence of that year, 6 digits>``.
INVOICE_NUMBER_PATTERN = r"^[0-9]{4}-[0-9]{6,}$"
InvoiceNumber = Annotated[str, Field(pattern=INVOICE_NUMBER_PATTERN)]


class InvoiceStatus(StrEnum):
    DRAFT = "DRAFT"  # content fixed, no number yet
    ISSUED = "ISSUED"  # numbered and dated
    PAID = "PAID"
    VOID = "VOID"  # cancelled; keeps its number (no gap)


class InvoiceLineKind(StrEnum):
    CHARGES = "CHARGES"  # a member's sessions at one price per kWh
    REVERSALS = "REVERSALS"  # Credit CDRs reversing charges (negative)
    MONTHLY_FEE = "MONTHLY_FEE"  # the contract's fee for an active member


class Buyer(_Model):
    """The corporation as it was when the invoice was drafted: a later
    change of address or name does not change an invoice."""

    legal_name: Text
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
    registration_number: Annotated[str, Field(min_length=1, max_length=40)]
    vat_id: Annotated[str, Field(min_length=3, max_length=40)]
    address: Address
    billing_email: Email
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


class InvoiceLine(_Model):
    """One line: a member's sessions (or reversals) at one unit price, in
    one cost centre, or a member's monthly fee. ``net`` is the sum of the
    charges' own amounts (each rounded to the cent when it was recorded),
    not ``energy_kwh`` x ``unit_price`` rounded again."""

    kind: InvoiceLineKind
    member_id: MemberId
    member_name: Text
    cost_centre: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    sessions: Annotated[int, Field(ge=0)]
    energy_kwh: SignedMoney
    unit_price: Money
    net: SignedMoney


class CostCentreTotal(_Model):
    """A cost centre's part of the invoice (None: members without one)."""

    cost_centre: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    sessions: Annotated[int, Field(ge=0)]
    energy_kwh: SignedMoney
    net: SignedMoney


class VatBreakdown(_Model):
    """VAT of one rate, computed once on the net total of that rate."""

    rate: Annotated[Money, Field(le=1)]
    base: SignedMoney
    amount: SignedMoney


class InvoiceDraftedPayload(_Model):
    """An invoice's whole content, fixed once: replay never recomputes it.
    ``charge_keys`` are the CDR keys of the charges on it, and
    ``reversal_keys`` the CDR keys whose reversal is on it; from then on
    they are no longer open (a late charge lands on a later invoice)."""

    invoice_id: InvoiceId
    corporation_id: CorporationId
    month: Month
    period_start: AwareDatetime  # included
    period_end: AwareDatetime  # excluded: sessions that ended before it
    buyer: Buyer
    contract: Contract
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    lines: list[InvoiceLine]
    cost_centres: list[CostCentreTotal]
    net_total: SignedMoney
    vat: list[VatBreakdown]
    vat_total: SignedMoney
    gross_total: SignedMoney
    payment_term_days: Annotated[int, Field(ge=0, le=365)]
    charge_keys: list[Annotated[str, Field(min_length=1, max_length=160)]]
    reversal_keys: list[Annotated[str, Field(min_length=1, max_length=160)]]
    at: AwareDatetime


class InvoiceDrafted(EventMeta):
    """A month's invoice of a corporation was drafted (``close-month``)."""

    event_type: Literal["InvoiceDrafted"] = "InvoiceDrafted"
    schema_version: Literal[1] = 1
    payload: InvoiceDraftedPayload


class InvoiceIssuedPayload(_Model):
    invoice_id: InvoiceId
    corporation_id: CorporationId
    number: InvoiceNumber
    issue_date: date
    due_date: date
    at: AwareDatetime


class InvoiceIssued(EventMeta):
    """The drafted invoice got its number (from the numbering aggregate,
    topic ``ocpi-hub.billing-invoice-numbers.v1``) and its dates."""

    event_type: Literal["InvoiceIssued"] = "InvoiceIssued"
    schema_version: Literal[1] = 1
    payload: InvoiceIssuedPayload


class InvoicePaidPayload(_Model):
    invoice_id: InvoiceId
    corporation_id: CorporationId
    paid_on: date
    reference: Annotated[str, Field(max_length=200)] | None = None
    at: AwareDatetime


class InvoicePaid(EventMeta):
    """An issued invoice was paid (recorded by ops)."""

    event_type: Literal["InvoicePaid"] = "InvoicePaid"
    schema_version: Literal[1] = 1
    payload: InvoicePaidPayload


class InvoiceVoidedPayload(_Model):
    invoice_id: InvoiceId
    corporation_id: CorporationId
    reason: Annotated[str, Field(min_length=1, max_length=500)]
    at: AwareDatetime


class InvoiceVoided(EventMeta):
    """An issued invoice was cancelled; it keeps its number. Its charges
    and reversals are open again: they land on the next invoice."""

    event_type: Literal["InvoiceVoided"] = "InvoiceVoided"
    schema_version: Literal[1] = 1
    payload: InvoiceVoidedPayload


# --- invoice e-mails (issue 14, part D; docs/adr/0040) ----------------------------

# The mailing an issued invoice gets on its own (the billing worker sends it
# when it reads ``InvoiceIssued``); every re-send has a new 32-hex id.
FIRST_MAILING = "issue"
MAILING_ID_PATTERN = r"^(issue|[0-9a-f]{32})$"
MailingId = Annotated[str, Field(pattern=MAILING_ID_PATTERN)]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class InvoiceMailingRequestedPayload(_Model):
    invoice_id: InvoiceId
    corporation_id: CorporationId
    mailing_id: MailingId
    at: AwareDatetime


class InvoiceMailingRequested(EventMeta):
    """Ops asked for an issued invoice to be e-mailed again
    (``POST /ops/invoices/{id}/mail``); the billing worker sends it once."""

    event_type: Literal["InvoiceMailingRequested"] = "InvoiceMailingRequested"
    schema_version: Literal[1] = 1
    payload: InvoiceMailingRequestedPayload


class InvoiceMailedPayload(_Model):
    """What was sent: to whom, the Message-ID, and the SHA-256 of the two
    attachments' bytes (the Factur-X PDF and the CSV), so the files sent can
    be told from any rendered later (a font or library upgrade changes the
    PDF's bytes, docs/adr/0037)."""

    invoice_id: InvoiceId
    corporation_id: CorporationId
    mailing_id: MailingId
    recipient: Email
    message_id: Annotated[str, Field(min_length=1, max_length=200)]
    pdf_sha256: Sha256
    csv_sha256: Sha256
    at: AwareDatetime


class InvoiceMailed(EventMeta):
    """The SMTP server accepted one mailing of an invoice (its PDF and CSV)."""

    event_type: Literal["InvoiceMailed"] = "InvoiceMailed"
    schema_version: Literal[1] = 1
    payload: InvoiceMailedPayload


# --- credit notes (issue 14, part E; docs/adr/0041) ------------------------------

# A credit note of one invoice: ``<invoice id>-cn<n>``, n counting the
# invoice's credit notes from 1, so its corporation and invoice are in its id.
CREDIT_NOTE_ID_PATTERN = r"^[a-z0-9]{12}-[0-9]{4}(0[1-9]|1[0-2])-cn[1-9][0-9]{0,3}$"
CreditNoteId = Annotated[str, Field(pattern=CREDIT_NOTE_ID_PATTERN)]
# Their own gap-free series: ``CN-<year of issue>-<sequence of that year>``.
CREDIT_NOTE_NUMBER_PATTERN = r"^CN-[0-9]{4}-[0-9]{6,}$"
CreditNoteNumber = Annotated[str, Field(pattern=CREDIT_NOTE_NUMBER_PATTERN)]
CdrKey = Annotated[str, Field(min_length=1, max_length=160)]


class CreditNoteStatus(StrEnum):
    REQUESTED = "REQUESTED"  # waiting for a decision; its amount is reserved
    APPROVED = "APPROVED"  # approved, its number being given (a moment)
    ISSUED = "ISSUED"  # numbered and dated: the document exists
    REJECTED = "REJECTED"  # nothing credited; the amount is free again


class CreditNoteLineKind(StrEnum):
    SESSION = "SESSION"  # a whole charge of the invoice (its CDR)
    AMOUNT = "AMOUNT"  # a part of the invoice, by amount


class CreditNoteLine(_Model):
    """One line of a credit note, positive (the document type says it is a
    credit). A session line is the charge as the invoice billed it: its
    kWh, price and amount; an amount line is one unit at the amount."""

    kind: CreditNoteLineKind
    description: Annotated[str, Field(min_length=1, max_length=300)]
    cdr_key: CdrKey | None = None
    member_id: MemberId | None = None
    member_name: Text | None = None
    cost_centre: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    energy_kwh: SignedMoney
    unit_price: Money
    net: Money


class CreditNoteRequestedPayload(_Model):
    """A refund asked for: whole sessions of the invoice or a part of it by
    amount, net (excl. VAT). The VAT is decided when it is issued. Who asked
    is the envelope's ``actor`` (docs/adr/0031)."""

    credit_note_id: CreditNoteId
    corporation_id: CorporationId
    invoice_id: InvoiceId
    # The invoice it corrects, as it was issued (EN 16931 BT-25, BT-26).
    invoice_number: InvoiceNumber
    invoice_issue_date: date
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    lines: Annotated[list[CreditNoteLine], Field(min_length=1)]
    net_total: Money
    reason: Annotated[str, Field(min_length=1, max_length=500)]
    at: AwareDatetime


class CreditNoteRequested(EventMeta):
    """A credit note of an issued or paid invoice was requested."""

    event_type: Literal["CreditNoteRequested"] = "CreditNoteRequested"
    schema_version: Literal[1] = 1
    payload: CreditNoteRequestedPayload


class CreditNoteDecidedPayload(_Model):
    credit_note_id: CreditNoteId
    corporation_id: CorporationId
    invoice_id: InvoiceId
    at: AwareDatetime


class CreditNoteApproved(EventMeta):
    """Approved by the envelope's ``actor`` (a billing operator other than
    the requester unless four eyes are switched off); the number follows."""

    event_type: Literal["CreditNoteApproved"] = "CreditNoteApproved"
    schema_version: Literal[1] = 1
    payload: CreditNoteDecidedPayload


class CreditNoteRejectedPayload(CreditNoteDecidedPayload):
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class CreditNoteRejected(EventMeta):
    """Rejected by the envelope's ``actor``: nothing is credited."""

    event_type: Literal["CreditNoteRejected"] = "CreditNoteRejected"
    schema_version: Literal[1] = 1
    payload: CreditNoteRejectedPayload


class CreditNoteIssuedPayload(_Model):
    """The approved credit note with its number (from the numbering
    aggregate), dates and VAT: ``net_total`` x the invoice's rate rounded
    half up to the cent, or, when it credits all that remained of the
    invoice, exactly the VAT that remained (``settles_invoice``), so the
    invoice and its credit notes net to zero. ``vat_roundings`` is how many
    separately rounded VAT amounts ``vat_total`` settles (1, or the
    invoice's and each earlier credit note's)."""

    credit_note_id: CreditNoteId
    corporation_id: CorporationId
    invoice_id: InvoiceId
    number: CreditNoteNumber
    issue_date: date
    due_date: date
    vat_rate: Annotated[Money, Field(le=1)]
    net_total: Money
    vat_total: Money
    gross_total: Money
    settles_invoice: bool
    vat_roundings: Annotated[int, Field(ge=1)]
    at: AwareDatetime


class CreditNoteIssued(EventMeta):
    """A credit note was issued; the invoice it corrects is unchanged."""

    event_type: Literal["CreditNoteIssued"] = "CreditNoteIssued"
    schema_version: Literal[1] = 1
    payload: CreditNoteIssuedPayload


CreditNoteEvent = CreditNoteRequested | CreditNoteApproved | CreditNoteRejected | CreditNoteIssued


class CreditNoteMailedPayload(_Model):
    """What was sent of an issued credit note, as ``InvoiceMailedPayload``
    says for an invoice: to whom, the Message-ID, the SHA-256 of the two
    attachments. A credit note is mailed once, when issued."""

    credit_note_id: CreditNoteId
    corporation_id: CorporationId
    invoice_id: InvoiceId
    recipient: Email
    message_id: Annotated[str, Field(min_length=1, max_length=200)]
    pdf_sha256: Sha256
    csv_sha256: Sha256
    at: AwareDatetime


class CreditNoteMailed(EventMeta):
    """The SMTP server accepted the e-mail of an issued credit note."""

    event_type: Literal["CreditNoteMailed"] = "CreditNoteMailed"
    schema_version: Literal[1] = 1
    payload: CreditNoteMailedPayload


BillingEvent = (
    CorporationRegistered
    | CorporationStatusChanged
    | MemberInvited
    | InvitationMailed
    | MemberActivated
    | ChargeRecorded
    | ChargeReversed
    | InvoiceDrafted
    | InvoiceIssued
    | InvoicePaid
    | InvoiceVoided
    | InvoiceMailingRequested
    | InvoiceMailed
    # credit notes (docs/adr/0041)
    | CreditNoteRequested
    | CreditNoteApproved
    | CreditNoteRejected
    | CreditNoteIssued
    | CreditNoteMailed
)


# --- the invoice numbers (one aggregate, one partition, one order) -----------------

INVOICE_NUMBERS_KEY = "invoice-numbers"


class AssignedNumber(_Model):
    invoice_id: InvoiceId
    number: InvoiceNumber
    issue_date: date


class InvoiceNumbersAssignedPayload(_Model):
    """Numbers for drafted invoices, each the last one + 1 in its year of
    issue, in the order listed; an invoice id is numbered once."""

    numbers: list[AssignedNumber]
    at: AwareDatetime


class InvoiceNumbersAssigned(EventMeta):
    event_type: Literal["InvoiceNumbersAssigned"] = "InvoiceNumbersAssigned"
    schema_version: Literal[1] = 1
    payload: InvoiceNumbersAssignedPayload


class MonthClosedPayload(_Model):
    month: Month
    invoices: Annotated[int, Field(ge=0)]
    at: AwareDatetime


class MonthClosed(EventMeta):
    """Every invoice of the month was issued: a second close of it is refused."""

    event_type: Literal["MonthClosed"] = "MonthClosed"
    schema_version: Literal[1] = 1
    payload: MonthClosedPayload


class CreditNoteNumberAssignedPayload(_Model):
    """The number of one approved credit note, in the credit notes' own
    series (docs/adr/0041): the last of its year of issue + 1."""

    credit_note_id: CreditNoteId
    number: CreditNoteNumber
    issue_date: date
    at: AwareDatetime


class CreditNoteNumberAssigned(EventMeta):
    event_type: Literal["CreditNoteNumberAssigned"] = "CreditNoteNumberAssigned"
    schema_version: Literal[1] = 1
    payload: CreditNoteNumberAssignedPayload


InvoiceNumberEvent = InvoiceNumbersAssigned | MonthClosed | CreditNoteNumberAssigned
