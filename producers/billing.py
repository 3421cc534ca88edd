"""The billing slice (issue 14, docs/adr/0035): corporations, their
contract and members. Pure: no I/O, the clock passed in.

One aggregate per corporation (``SLICE``, keyed by its id), written through
the one write path (docs/adr/0022): its members live inside it, so an
invitation, an activation and a suspension are decided on one state and
keep their order in the log. ``evolve`` is the fold for the write path and
for the MySQL rows (projections/mysql/billing.py) alike.

Registration numbers and VAT ids are checked per country with
python-stdnum (formats and checksums) before anything is decided
(``checked_identifiers``): a refusal names the field and the rule.

The activation link carries a secret derived from the invitation with a
key only our processes hold (``link_secret``): no secret is in an event,
and a new invitation makes the older link useless.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from types import ModuleType
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from stdnum import get_cc_module
from stdnum.exceptions import (
    InvalidChecksum,
    InvalidComponent,
    InvalidFormat,
    InvalidLength,
    ValidationError,
)

from producers.write_path import (
    Decision,
    Origin,
    RefusedError,
    Slice,
    conflict,
    recorded_now,
    unknown,
)
from schemas.events.billing import (
    FIRST_MAILING,
    Address,
    BillingEvent,
    Buyer,
    ChargeRecorded,
    ChargeRecordedPayload,
    ChargeReversed,
    ChargeReversedPayload,
    Contract,
    CorporationRegistered,
    CorporationRegisteredPayload,
    CorporationStatus,
    CorporationStatusChanged,
    CorporationStatusChangedPayload,
    CostCentreTotal,
    CreditNoteApproved,
    CreditNoteDecidedPayload,
    CreditNoteEvent,
    CreditNoteIssued,
    CreditNoteIssuedPayload,
    CreditNoteLine,
    CreditNoteLineKind,
    CreditNoteMailed,
    CreditNoteMailedPayload,
    CreditNoteRejected,
    CreditNoteRejectedPayload,
    CreditNoteRequested,
    CreditNoteRequestedPayload,
    CreditNoteStatus,
    Email,
    InvitationMailed,
    InvitationMailedPayload,
    InvoiceDrafted,
    InvoiceDraftedPayload,
    InvoiceIssued,
    InvoiceIssuedPayload,
    InvoiceLine,
    InvoiceLineKind,
    InvoiceMailed,
    InvoiceMailedPayload,
    InvoiceMailingRequested,
    InvoiceMailingRequestedPayload,
    InvoicePaid,
    InvoicePaidPayload,
    InvoiceStatus,
    InvoiceVoided,
    InvoiceVoidedPayload,
    MemberActivated,
    MemberActivatedPayload,
    MemberInvited,
    MemberInvitedPayload,
    MemberStatus,
    PaymentMethod,
    Text,
    VatBreakdown,
)
from schemas.events.envelope import Actor
from schemas.ocpi.common import format_ocpi_datetime
from schemas.ocpi.status_codes import OcpiStatus
from schemas.topics import BILLING_CORPORATIONS

# --- what ops send ------------------------------------------------------------------


class NewCorporation(BaseModel):
    """``POST /ops/corporations``: a corporation and its contract."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    legal_name: Text
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
    registration_number: Annotated[str, Field(min_length=1, max_length=60)]
    vat_id: Annotated[str, Field(min_length=1, max_length=60)]
    billing_address: Address
    billing_email: Email
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "EUR"
    payment_method: PaymentMethod = PaymentMethod.MONTHLY_INVOICE
    contract: Contract


class StatusChange(BaseModel):
    """``POST /ops/corporations/{id}/status``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: CorporationStatus
    reason: Annotated[str, Field(max_length=500)] | None = None


class NewMember(BaseModel):
    """``POST /ops/corporations/{id}/members``: invited by e-mail."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Text
    email: Email
    cost_centre: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    rfid_uid: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,36}$")] | None = None


# --- registration numbers and VAT ids (python-stdnum) -----------------------------

# The company register per country, as python-stdnum names its module, or a
# plain pattern where the register has no check digit (and python-stdnum
# no module): the Dutch KvK number is eight digits.
_REGISTERS: dict[str, str] = {
    "AT": "at.businessid",
    "BE": "be.vat",  # the enterprise number (ondernemingsnummer)
    "CH": "ch.uid",
    "DE": "de.handelsregisternummer",
    "DK": "dk.cvr",
    "EE": "ee.registrikood",
    "ES": "es.cif",
    "FI": "fi.ytunnus",
    "FR": "fr.siren",
    "IT": "it.iva",  # the partita IVA is the company's number
    "NO": "no.orgnr",
    "PL": "pl.regon",
    "PT": "pt.nif",
    "SE": "se.orgnr",
}
_PATTERNS: dict[str, tuple[str, str]] = {"NL": (r"^[0-9]{8}$", "KvK number: 8 digits")}


def _rule(exc: Exception) -> str:
    if isinstance(exc, InvalidChecksum):
        return "checksum does not match"
    if isinstance(exc, InvalidLength):
        return "wrong length"
    if isinstance(exc, InvalidFormat):
        return "wrong format"
    if isinstance(exc, InvalidComponent):
        return "a part of it is not valid"
    return "not valid"


def _invalid(field: str, message: str) -> RefusedError:
    return RefusedError(
        OcpiStatus.INVALID_PARAMETERS, f"invalid or missing parameters: {field}: {message}"
    )


def checked_identifiers(country: str, registration_number: str, vat_id: str) -> tuple[str, str]:
    """The registration number and VAT id in compact form, checked by the
    rules of ``country``; raises ``RefusedError`` (2001) naming the field
    and the rule it broke."""
    if country in _PATTERNS:
        pattern, what = _PATTERNS[country]
        compact = re.sub(r"[\s.-]", "", registration_number)
        if not re.match(pattern, compact):
            raise _invalid("registration_number", f"not a {country} {what}")
        registration = compact
    elif country in _REGISTERS:
        module: ModuleType = importlib.import_module(f"stdnum.{_REGISTERS[country]}")
        try:
            registration = str(module.validate(registration_number))
        except (ValidationError, ValueError, LookupError, TypeError) as exc:
            raise _invalid(
                "registration_number",
                f"not a valid {country} number ({module.__name__.removeprefix('stdnum.')}): "
                f"{_rule(exc)}",
            ) from exc
    else:
        raise _invalid("registration_number", f"no rule for country {country} (yet)")
    # Greece's VAT ids carry EL, not GR (VIES).
    prefix = "EL" if country == "GR" else country
    vat_module = get_cc_module(country.lower(), "vat")
    if vat_module is None:
        raise _invalid("vat_id", f"no rule for country {country} (yet)")
    raw = vat_id.strip().upper()
    if raw[:2].isalpha() and raw[:2] != prefix:
        raise _invalid("vat_id", f"starts with {raw[:2]}, a {country} VAT id starts with {prefix}")
    try:
        vat = str(vat_module.validate(raw))
    except (ValidationError, ValueError, LookupError, TypeError) as exc:
        raise _invalid(
            "vat_id",
            f"not a valid {country} VAT id ({country.lower()}.vat): {_rule(exc)}",
        ) from exc
    return registration, vat if vat.startswith(prefix) else prefix + vat


# --- the state ---------------------------------------------------------------------


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


def _with_member(state: CorporationState, member: MemberState, at: datetime) -> CorporationState:
    return state.model_copy(
        update={"members": {**state.members, member.member_id: member}, "updated_at": at}
    )


def evolve(state: CorporationState | None, event: BillingEvent) -> CorporationState | None:
    """Fold one event. Events of a corporation the log does not hold (it
    cannot happen through ``decide_*``) change nothing."""
    if isinstance(event, CorporationRegistered):
        p = event.payload
        return CorporationState(
            corporation_id=p.corporation_id,
            legal_name=p.legal_name,
            country=p.country,
            registration_number=p.registration_number,
            vat_id=p.vat_id,
            billing_address=p.billing_address,
            billing_email=p.billing_email,
            currency=p.currency,
            payment_method=p.payment_method,
            contract=p.contract,
            registered_at=p.at,
            updated_at=p.at,
        )
    if state is None:
        return None
    if isinstance(event, CorporationStatusChanged):
        s = event.payload
        return state.model_copy(
            update={
                "status": s.status,
                "status_reason": s.reason,
                "status_since": s.at,
                "updated_at": s.at,
            }
        )
    if isinstance(event, ChargeRecorded):
        c = event.payload
        charge = ChargeState(
            member_id=c.member_id,
            amount=c.amount,
            cost_centre=c.cost_centre,
            energy_kwh=c.energy_kwh,
            price_per_kwh=c.price_per_kwh,
            ended_at=c.end_date_time,
        )
        return state.model_copy(update={"charges": {**state.charges, c.cdr_key: charge}})
    if isinstance(event, ChargeReversed):
        r = event.payload
        held_charge = state.charges.get(r.cdr_key)
        if held_charge is None:
            # The Credit CDR came first (its key may be on another
            # partition): the original, when it comes, is charged nothing.
            held_charge = ChargeState(member_id=r.member_id or "", amount=Decimal(0))
        reversed_ = held_charge.model_copy(
            update={"reversed_by": r.credit_cdr_key, "reversal_amount": r.amount}
        )
        return state.model_copy(update={"charges": {**state.charges, r.cdr_key: reversed_}})
    if isinstance(event, InvoiceEvents):
        return _with_source(_evolve_invoice(state, event), event)
    if isinstance(event, InvoiceMailEvents):
        return _evolve_mailing(state, event)
    if isinstance(event, CreditNoteEvents):
        return _evolve_credit_note(state, event)
    if isinstance(event, CreditNoteMailed):
        return _evolve_credit_note_mailed(state, event)
    if isinstance(event, MemberInvited):
        i = event.payload
        before = state.members.get(i.member_id)
        member = MemberState(
            member_id=i.member_id,
            name=i.name,
            email=i.email,
            cost_centre=i.cost_centre,
            status=MemberStatus.INVITED,
            invitation_id=i.invitation_id,
            expires_at=i.expires_at,
            rfid_uid=i.rfid_uid,
            invited_at=before.invited_at if before else i.at,
        )
        return _with_member(state, member, i.at)
    member_id = event.payload.member_id
    held = state.members.get(member_id)
    if held is None:
        return state
    if isinstance(event, InvitationMailed):
        m = event.payload
        return _with_member(
            state, held.model_copy(update={"mailed_invitation_id": m.invitation_id}), m.at
        )
    a = event.payload
    activated = held.model_copy(
        update={
            "status": MemberStatus.ACTIVE,
            "token_uid": a.token_uid,
            "token_type": a.token_type,
            "activated_at": a.at,
        }
    )
    return _with_member(state, activated, a.at)


SLICE: Slice[CorporationState] = Slice(
    # v2: the state gained the charges' details and the invoices (docs/adr/0036);
    # v3: the invoices' sources and mailings (docs/adr/0040); v4: the invoices'
    # VAT rate and the credit notes (docs/adr/0041); v5: what an issued credit
    # note's files need besides (its VAT roundings). A new name makes every
    # decision store rebuild it from the log once.
    "billing_corporations_v5",
    BILLING_CORPORATIONS,
    evolve,
    lambda state: state.model_dump_json().encode(),
    CorporationState.model_validate_json,
)


# --- ids and the activation link --------------------------------------------------

_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def new_id() -> str:
    """A corporation or member id: 12 lower-case letters and digits (62 bits)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(12))


def new_invitation_id() -> str:
    return secrets.token_hex(16)


def link_key(platform_key: bytes) -> bytes:
    """The key of activation links, derived from the platform's secret key
    so that it is never in an event and needs no setting of its own."""
    return hmac.new(platform_key, b"ocpi-hub billing activation link v1", hashlib.sha256).digest()


def link_secret(key: bytes, corporation_id: str, member_id: str, invitation_id: str) -> str:
    """The secret part of one invitation's link (HMAC-SHA256, hex)."""
    message = f"{corporation_id}/{member_id}/{invitation_id}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def link_matches(
    key: bytes, corporation_id: str, member_id: str, invitation_id: str, secret: str
) -> bool:
    expected = link_secret(key, corporation_id, member_id, invitation_id)
    return hmac.compare_digest(expected, secret)


def member_token_uid(member: MemberState) -> tuple[str, str]:
    """The uid and type of the token a member gets: the RFID card's uid
    when one was given, else an APP_USER token named after the member."""
    if member.rfid_uid is not None:
        return member.rfid_uid.upper(), "RFID"
    return f"CB{member.member_id.upper()}", "APP_USER"


def _token_type(value: str) -> Literal["RFID", "APP_USER"]:
    return "RFID" if value == "RFID" else "APP_USER"


def member_token(
    state: CorporationState,
    member: MemberState,
    *,
    country_code: str,
    party_id: str,
    now: datetime,
) -> dict[str, Any]:
    """The OCPI Token (mod_tokens) we issue to an activated member; its
    ``group_id`` is the corporation, so partners see the fleet together."""
    uid, token_type = member_token_uid(member)
    return {
        "country_code": country_code,
        "party_id": party_id,
        "uid": uid,
        "type": token_type,
        "contract_id": f"{country_code}{party_id}C{member.member_id.upper()}",
        "issuer": state.legal_name[:64],
        "group_id": state.corporation_id.upper(),
        "valid": True,
        # Ask us in real time whenever the CPO can: a suspension then stops
        # the token at once (whitelist caches of partners cannot lag).
        "whitelist": "ALLOWED",
        "last_updated": now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
    }


def validity_patch(valid: bool, now: datetime) -> dict[str, Any]:
    """The OCPI PATCH of a member token's ``valid`` (suspension, reinstatement)."""
    return {"valid": valid, "last_updated": format_ocpi_datetime(now)}


# --- decisions ---------------------------------------------------------------------


def _decided(
    state: CorporationState | None, events: list[BillingEvent]
) -> Decision[CorporationState]:
    after = state
    for event in events:
        after = evolve(after, event)
    assert after is not None
    return Decision(events, after)


def decide_register(
    state: CorporationState | None,
    *,
    corporation_id: str,
    body: NewCorporation,
    origin: Origin,
    now: datetime,
) -> Decision[CorporationState]:
    if state is not None:  # 62 bits of id: a clash is a bug, not bad luck
        raise conflict(f"corporation {corporation_id!r} exists")
    if body.contract.vat_rate == 0:
        # No invoice of a 0 % contract could be documented (docs/adr/0040).
        raise _invalid(
            "contract.vat_rate",
            "0 % is not supported yet: zero-rated, exempt and reverse-charge "
            "invoices (VAT categories Z, E, AE) are not implemented",
        )
    registration, vat = checked_identifiers(body.country, body.registration_number, body.vat_id)
    event = CorporationRegistered(
        **recorded_now(corporation_id, now, origin),
        payload=CorporationRegisteredPayload(
            corporation_id=corporation_id,
            legal_name=body.legal_name,
            country=body.country,
            registration_number=registration,
            vat_id=vat,
            billing_address=body.billing_address,
            billing_email=body.billing_email,
            currency=body.currency,
            payment_method=body.payment_method,
            contract=body.contract,
            at=now,
        ),
    )
    return _decided(None, [event])


def _require(state: CorporationState | None, corporation_id: str) -> CorporationState:
    if state is None:
        raise unknown(f"corporation {corporation_id!r}")
    return state


# Which status may follow which: a closed corporation stays closed.
_NEXT: dict[CorporationStatus, frozenset[CorporationStatus]] = {
    CorporationStatus.ACTIVE: frozenset({CorporationStatus.SUSPENDED, CorporationStatus.CLOSED}),
    CorporationStatus.SUSPENDED: frozenset({CorporationStatus.ACTIVE, CorporationStatus.CLOSED}),
    CorporationStatus.CLOSED: frozenset(),
}


def decide_status(
    state: CorporationState | None,
    *,
    corporation_id: str,
    change: StatusChange,
    origin: Origin,
    now: datetime,
) -> Decision[CorporationState]:
    """Suspend, reinstate or close. The same status again records nothing
    (a retried request is the same change)."""
    current = _require(state, corporation_id)
    if change.status is current.status:
        return Decision([], current)
    if change.status not in _NEXT[current.status]:
        raise conflict(
            f"corporation {corporation_id!r} is {current.status.value}: "
            f"it cannot become {change.status.value}"
        )
    event = CorporationStatusChanged(
        **recorded_now(corporation_id, now, origin),
        payload=CorporationStatusChangedPayload(
            corporation_id=corporation_id, status=change.status, reason=change.reason, at=now
        ),
    )
    return _decided(current, [event])


def decide_invite(
    state: CorporationState | None,
    *,
    corporation_id: str,
    member_id: str,
    body: NewMember | None,
    invitation_id: str,
    valid_for: timedelta,
    origin: Origin,
    now: datetime,
) -> Decision[CorporationState]:
    """Invite a new member (``body``), or invite again a member who has not
    activated yet (``body`` None): a new invitation id, so the older link
    stops working."""
    current = _require(state, corporation_id)
    if current.status is not CorporationStatus.ACTIVE:
        raise conflict(f"corporation {corporation_id!r} is {current.status.value}")
    held = current.members.get(member_id)
    if body is not None:
        if held is not None:
            raise conflict(f"member {member_id!r} exists")
        email = body.email.lower()
        if any(m.email.lower() == email for m in current.members.values()):
            raise conflict(f"a member with e-mail {body.email!r} exists in this corporation")
        name, email, cost_centre, rfid = body.name, body.email, body.cost_centre, body.rfid_uid
    else:
        if held is None:
            raise unknown(f"member {member_id!r}")
        if held.status is MemberStatus.ACTIVE:
            raise conflict(f"member {member_id!r} is already active")
        name, email, cost_centre, rfid = held.name, held.email, held.cost_centre, held.rfid_uid
    event = MemberInvited(
        **recorded_now(corporation_id, now, origin),
        payload=MemberInvitedPayload(
            corporation_id=corporation_id,
            member_id=member_id,
            name=name,
            email=email,
            cost_centre=cost_centre,
            invitation_id=invitation_id,
            expires_at=now + valid_for,
            rfid_uid=rfid,
            at=now,
        ),
    )
    return _decided(current, [event])


def decide_mailed(
    state: CorporationState | None,
    *,
    corporation_id: str,
    member_id: str,
    invitation_id: str,
    message_id: str,
    origin: Origin,
    now: datetime,
) -> Decision[CorporationState]:
    """Record that an invitation's e-mail was accepted by the SMTP server;
    once per invitation."""
    current = _require(state, corporation_id)
    held = current.members.get(member_id)
    if held is None:
        raise unknown(f"member {member_id!r}")
    if held.mailed_invitation_id == invitation_id:
        return Decision([], current)
    event = InvitationMailed(
        **recorded_now(corporation_id, now, origin),
        payload=InvitationMailedPayload(
            corporation_id=corporation_id,
            member_id=member_id,
            invitation_id=invitation_id,
            message_id=message_id,
            at=now,
        ),
    )
    return _decided(current, [event])


class LinkRefusedError(RefusedError):
    """The activation link cannot activate (unknown, used up, expired)."""


def _link_refused(message: str, http_status: int = 410) -> LinkRefusedError:
    return LinkRefusedError(OcpiStatus.CLIENT_ERROR, message, http_status)


def decide_activate(
    state: CorporationState | None,
    *,
    corporation_id: str,
    member_id: str,
    invitation_id: str,
    origin: Origin,
    now: datetime,
) -> Decision[CorporationState]:
    """Activate the member of a valid, unexpired link. The same link once
    more, after it activated, records nothing and answers the member (the
    token is then written again, which is how a failure between the two
    writes is repaired); any other use is refused."""
    if state is None or member_id not in state.members:
        raise _link_refused("this activation link is not known", 404)
    held = state.members[member_id]
    if held.invitation_id != invitation_id:
        raise _link_refused("this activation link was replaced by a newer invitation")
    if held.status is MemberStatus.ACTIVE:
        return Decision([], state)
    if now >= held.expires_at:
        raise _link_refused("this activation link has expired: ask for a new invitation")
    if state.status is not CorporationStatus.ACTIVE:
        raise _link_refused(f"the corporation's account is {state.status.value.lower()}", 409)
    uid, token_type = member_token_uid(held)
    event = MemberActivated(
        **recorded_now(corporation_id, now, origin),
        payload=MemberActivatedPayload(
            corporation_id=corporation_id,
            member_id=member_id,
            invitation_id=invitation_id,
            token_uid=uid,
            token_type=_token_type(token_type),
            at=now,
        ),
    )
    return _decided(state, [event])


# --- charges -------------------------------------------------------------------------

CENT = Decimal("0.01")


def price_charge(energy_kwh: Decimal, price_per_kwh: Decimal) -> Decimal:
    """A charge's amount excl. VAT: the exact product, rounded once, half
    up, to the cent (docs/adr/0035). Invoice lines and totals will add
    these rounded amounts, so the sum of the lines is the total."""
    return (energy_kwh * price_per_kwh).quantize(CENT, rounding=ROUND_HALF_UP)


def _exact(value: Any) -> Decimal:
    # CDR numbers come back from JSON as int or float; repr gives the digits
    # that were written (the shortest form that reads back the same).
    return Decimal(repr(value) if isinstance(value, float) else str(value))


def member_of_token(state: CorporationState, uid: str, token_type: str) -> MemberState | None:
    for member in state.members.values():
        if (
            member.token_uid is not None
            and member.token_uid.upper() == uid.upper()
            and member.token_type == token_type
        ):
            return member
    return None


def _token_member(state: CorporationState, cdr: dict[str, Any]) -> MemberState | None:
    token = cdr.get("cdr_token") or {}
    if token.get("type") not in ("RFID", "APP_USER"):
        return None
    return member_of_token(state, str(token.get("uid")), str(token["type"]))


def decide_charge(
    state: CorporationState | None,
    *,
    corporation_id: str,
    cdr_key_of: Callable[[str], str],
    key: str,
    cdr: dict[str, Any],
    role: str,
    origin: Origin,
    now: datetime,
) -> Decision[CorporationState | None]:
    """The charge of one CDR of a member's token, or the reversal of the
    charge a Credit CDR names (``cdr_key_of`` turns its
    ``credit_reference_id`` into the original's key). Nothing when the CDR
    was charged already, is no member's, or reverses nothing we charged."""
    if state is None:
        return Decision([], None)
    if cdr.get("credit"):
        reference = cdr.get("credit_reference_id")
        original = cdr_key_of(str(reference)) if reference else None
        charged = state.charges.get(original) if original else None
        credited = _token_member(state, cdr)
        if original is None or (charged is not None and charged.reversed_by is not None):
            return Decision([], state)
        if charged is None and credited is None:
            return Decision([], state)  # no member's CDR
        reversal = ChargeReversed(
            **recorded_now(corporation_id, now, origin),
            payload=ChargeReversedPayload(
                corporation_id=corporation_id,
                cdr_key=original,
                credit_cdr_key=key,
                # Before its charge: nothing to reverse, and nothing will be charged.
                amount=-charged.amount if charged is not None else Decimal(0),
                member_id=charged.member_id if charged else credited.member_id,  # type: ignore[union-attr]
                at=now,
            ),
        )
        return _decided(state, [reversal])  # type: ignore[return-value]
    if key in state.charges:
        return Decision([], state)
    token = cdr["cdr_token"]
    member = _token_member(state, cdr)
    if member is None:
        return Decision([], state)
    energy = _exact(cdr["total_energy"])
    price = state.contract.price_per_kwh
    cost = cdr.get("total_cost") or {}
    event = ChargeRecorded(
        **recorded_now(corporation_id, now, origin),
        payload=ChargeRecordedPayload(
            corporation_id=corporation_id,
            member_id=member.member_id,
            cost_centre=member.cost_centre,
            cdr_key=key,
            role="issued" if role == "issued" else "received",
            token_uid=member.token_uid or "",
            token_type=_token_type(str(token["type"])),
            start_date_time=cdr["start_date_time"],
            end_date_time=cdr["end_date_time"],
            energy_kwh=energy,
            price_per_kwh=price,
            amount=price_charge(energy, price),
            currency=state.currency,
            cdr_cost_excl_vat=_exact(cost["excl_vat"]) if "excl_vat" in cost else None,
            at=now,
        ),
    )
    return _decided(state, [event])  # type: ignore[return-value]


def active_member_tokens(state: CorporationState) -> list[tuple[str, str]]:
    """(uid, type) of the tokens of the corporation's active members."""
    return [
        (m.token_uid, m.token_type)
        for m in state.members.values()
        if m.status is MemberStatus.ACTIVE and m.token_uid and m.token_type
    ]


def shown(state: CorporationState) -> dict[str, Any]:
    """A corporation as the ops API shows it (members listed apart)."""
    out = state.model_dump(mode="json", exclude={"members", "charges"})
    out["members"] = len(state.members)
    out["charges"] = len(state.charges)
    return out


def shown_member(member: MemberState) -> dict[str, Any]:
    return member.model_dump(mode="json")


# --- invoices (issue 14, part B; docs/adr/0036) ------------------------------------

InvoiceEvents = (InvoiceDrafted, InvoiceIssued, InvoicePaid, InvoiceVoided)


def invoice_id_of(corporation_id: str, month: str) -> str:
    """The one invoice of a corporation and month: a rerun names the same."""
    return f"{corporation_id}-{month.replace('-', '')}"


def corporation_of_invoice(invoice_id: str) -> str:
    return invoice_id.rsplit("-", 1)[0]


def _evolve_invoice(
    state: CorporationState, event: InvoiceDrafted | InvoiceIssued | InvoicePaid | InvoiceVoided
) -> CorporationState:
    if isinstance(event, InvoiceDrafted):
        d = event.payload
        invoice = InvoiceState(
            invoice_id=d.invoice_id,
            corporation_id=d.corporation_id,
            month=d.month,
            period_start=d.period_start,
            period_end=d.period_end,
            status=InvoiceStatus.DRAFT,
            buyer_legal_name=d.buyer.legal_name,
            currency=d.currency,
            net_total=d.net_total,
            vat_total=d.vat_total,
            gross_total=d.gross_total,
            payment_term_days=d.payment_term_days,
            lines=len(d.lines),
            drafted_at=d.at,
            updated_at=d.at,
            vat_rate=d.contract.vat_rate,
        )
        return state.model_copy(
            update={
                "invoices": {**state.invoices, d.invoice_id: invoice},
                "charge_invoices": state.charge_invoices
                | dict.fromkeys(d.charge_keys, d.invoice_id),
                "reversal_invoices": state.reversal_invoices
                | dict.fromkeys(d.reversal_keys, d.invoice_id),
            }
        )
    held = state.invoices.get(event.payload.invoice_id)
    if held is None:
        return state
    maps: dict[str, Any] = {}
    if isinstance(event, InvoiceIssued):
        i = event.payload
        changed: dict[str, Any] = {
            "status": InvoiceStatus.ISSUED,
            "number": i.number,
            "issue_date": i.issue_date,
            "due_date": i.due_date,
            "updated_at": i.at,
        }
    elif isinstance(event, InvoicePaid):
        p = event.payload
        changed = {
            "status": InvoiceStatus.PAID,
            "paid_on": p.paid_on,
            "payment_reference": p.reference,
            "updated_at": p.at,
        }
    else:
        v = event.payload
        changed = {"status": InvoiceStatus.VOID, "void_reason": v.reason, "updated_at": v.at}
        # A void invoice bills nothing: its charges and reversals are open
        # again and land on the next invoice drafted.
        maps = {
            "charge_invoices": {
                k: i for k, i in state.charge_invoices.items() if i != v.invoice_id
            },
            "reversal_invoices": {
                k: i for k, i in state.reversal_invoices.items() if i != v.invoice_id
            },
        }
    invoice = held.model_copy(update=changed)
    return state.model_copy(
        update={"invoices": {**state.invoices, held.invoice_id: invoice}, **maps}
    )


def _cents(value: Decimal) -> Decimal:
    # ROUND_HALF_UP rounds a half away from zero, for negative amounts too.
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def vat_of(net_total: Decimal, rate: Decimal) -> Decimal:
    """The VAT of a net total at one rate: computed once on the total,
    rounded half up to the cent (docs/adr/0036)."""
    return _cents(net_total * rate)


def _ended_before(charge: ChargeState, period_end: datetime) -> bool:
    return (
        charge.ended_at is not None
        and charge.energy_kwh is not None
        and charge.ended_at < period_end
    )


def open_items(state: CorporationState, period_end: datetime) -> tuple[list[str], list[str]]:
    """The CDR keys of the charges, and of the reversals, that an invoice
    of a period ending at ``period_end`` takes: recorded, on no invoice yet
    (or on a voided one), the session ended before the period's end. A
    reversal goes with its charge, or on the next invoice once its charge
    was invoiced. A Credit CDR read before its CDR reversed nothing (0): it
    is on no invoice."""
    charges: list[str] = []
    reversals: list[str] = []
    on_invoice, reversed_on = state.charge_invoices, state.reversal_invoices
    for key, charge in state.charges.items():
        invoiced = key in on_invoice
        due = not invoiced and _ended_before(charge, period_end)
        if due:
            charges.append(key)
        if (
            charge.reversed_by is not None
            and key not in reversed_on
            and charge.reversal_amount
            and (due or invoiced)
        ):
            reversals.append(key)
    return sorted(charges), sorted(reversals)


def invoice_lines(
    state: CorporationState,
    charge_keys: list[str],
    reversal_keys: list[str],
    *,
    period_start: datetime,
    period_end: datetime,
) -> list[InvoiceLine]:
    """The lines of an invoice, pure: per cost centre and member, the
    sessions at each price per kWh, the reversals, and the monthly fee of
    each member active at the period's end (unless the corporation had
    closed before the period began)."""
    groups: dict[tuple[str, str, InvoiceLineKind, Decimal], list[Decimal | int]] = {}

    def add(charge: ChargeState, kind: InvoiceLineKind, energy: Decimal, net: Decimal) -> None:
        price = charge.price_per_kwh if charge.price_per_kwh is not None else Decimal(0)
        group = (charge.cost_centre or "", charge.member_id, kind, price)
        sums = groups.setdefault(group, [0, Decimal(0), Decimal(0)])
        sums[0] += 1
        sums[1] += energy
        sums[2] += net

    for key in charge_keys:
        charge = state.charges[key]
        add(charge, InvoiceLineKind.CHARGES, charge.energy_kwh or Decimal(0), charge.amount)
    for key in reversal_keys:
        charge = state.charges[key]
        assert charge.reversal_amount is not None
        add(
            charge,
            InvoiceLineKind.REVERSALS,
            -(charge.energy_kwh or Decimal(0)),
            charge.reversal_amount,
        )
    fee = state.contract.monthly_fee_per_member
    closed_before = (
        state.status is CorporationStatus.CLOSED
        and state.status_since is not None
        and state.status_since < period_start
    )
    if fee and not closed_before:
        for member in state.members.values():
            if (
                member.status is MemberStatus.ACTIVE
                and member.activated_at is not None
                and member.activated_at < period_end
            ):
                group = (
                    member.cost_centre or "",
                    member.member_id,
                    InvoiceLineKind.MONTHLY_FEE,
                    fee,
                )
                groups[group] = [0, Decimal(0), _cents(fee)]
    order = list(InvoiceLineKind)

    def name(member_id: str) -> str:
        member = state.members.get(member_id)
        return member.name if member is not None else member_id

    def sort_key(group: tuple[str, str, InvoiceLineKind, Decimal]) -> tuple[Any, ...]:
        centre, member_id, kind, price = group
        # Lines without a cost centre last; then by member, kind and price.
        return (centre == "", centre, name(member_id), member_id, order.index(kind), price)

    return [
        InvoiceLine(
            kind=kind,
            member_id=member_id,
            member_name=name(member_id),
            cost_centre=centre or None,
            sessions=int(sums[0]),
            energy_kwh=Decimal(sums[1]),
            unit_price=price,
            net=Decimal(sums[2]),
        )
        for (centre, member_id, kind, price), sums in sorted(
            groups.items(), key=lambda item: sort_key(item[0])
        )
    ]


def cost_centre_totals(lines: list[InvoiceLine]) -> list[CostCentreTotal]:
    totals: dict[str | None, list[Any]] = {}
    for line in lines:
        sums = totals.setdefault(line.cost_centre, [0, Decimal(0), Decimal(0)])
        sums[0] += line.sessions if line.kind is InvoiceLineKind.CHARGES else 0
        sums[1] += line.energy_kwh
        sums[2] += line.net
    return [
        CostCentreTotal(cost_centre=centre, sessions=s[0], energy_kwh=s[1], net=s[2])
        for centre, s in totals.items()
    ]


class DraftOutcome(StrEnum):
    DRAFTED = "drafted"  # recorded now
    EXISTS = "exists"  # drafted before (a rerun)
    NOTHING = "nothing"  # nothing to bill: no invoice (docs/adr/0036)
    LATER = "later"  # a later month was invoiced already: this one is skipped


@dataclass(frozen=True)
class Drafted:
    outcome: DraftOutcome
    invoice: InvoiceState | None


def decide_draft(
    state: CorporationState | None,
    *,
    corporation_id: str,
    month: str,
    period_start: datetime,
    period_end: datetime,
    origin: Origin,
    now: datetime,
) -> Decision[Drafted]:
    """Draft the corporation's invoice of ``month``: its open charges and
    reversals of sessions that ended before the period's end, the monthly
    fees, the totals and VAT, all fixed in the event. Once per corporation
    and month; nothing when there is nothing to bill."""
    current = _require(state, corporation_id)
    invoice_id = invoice_id_of(corporation_id, month)
    held = current.invoices.get(invoice_id)
    if held is not None:
        return Decision([], Drafted(DraftOutcome.EXISTS, held))
    if any(i.month > month for i in current.invoices.values()):
        return Decision([], Drafted(DraftOutcome.LATER, None))
    charge_keys, reversal_keys = open_items(current, period_end)
    lines = invoice_lines(
        current, charge_keys, reversal_keys, period_start=period_start, period_end=period_end
    )
    if not lines:
        return Decision([], Drafted(DraftOutcome.NOTHING, None))
    net_total = sum((line.net for line in lines), Decimal(0))
    rate = current.contract.vat_rate
    vat = vat_of(net_total, rate)
    event = InvoiceDrafted(
        **recorded_now(corporation_id, now, origin),
        payload=InvoiceDraftedPayload(
            invoice_id=invoice_id,
            corporation_id=corporation_id,
            month=month,
            period_start=period_start,
            period_end=period_end,
            buyer=Buyer(
                legal_name=current.legal_name,
                country=current.country,
                registration_number=current.registration_number,
                vat_id=current.vat_id,
                address=current.billing_address,
                billing_email=current.billing_email,
                currency=current.currency,
            ),
            contract=current.contract,
            currency=current.currency,
            lines=lines,
            cost_centres=cost_centre_totals(lines),
            net_total=net_total,
            vat=[VatBreakdown(rate=rate, base=net_total, amount=vat)],
            vat_total=vat,
            gross_total=net_total + vat,
            payment_term_days=current.contract.payment_term_days,
            charge_keys=charge_keys,
            reversal_keys=reversal_keys,
            at=now,
        ),
    )
    after = evolve(current, event)
    assert after is not None
    return Decision([event], Drafted(DraftOutcome.DRAFTED, after.invoices[invoice_id]))


def _invoice(
    state: CorporationState | None, invoice_id: str
) -> tuple[CorporationState, InvoiceState]:
    corporation_id = corporation_of_invoice(invoice_id)
    current = _require(state, corporation_id)
    held = current.invoices.get(invoice_id)
    if held is None:
        raise unknown(f"invoice {invoice_id!r}")
    return current, held


def _invoice_decided(
    state: CorporationState, invoice_id: str, events: list[BillingEvent]
) -> Decision[InvoiceState]:
    after = state
    for event in events:
        after = evolve(after, event) or after
    return Decision(events, after.invoices[invoice_id])


def decide_issue(
    state: CorporationState | None,
    *,
    invoice_id: str,
    number: str,
    issue_date: date,
    origin: Origin,
    now: datetime,
) -> Decision[InvoiceState]:
    """Give the drafted invoice the number the numbering aggregate assigned
    it; once (a rerun with the same number records nothing)."""
    current, held = _invoice(state, invoice_id)
    if held.status is not InvoiceStatus.DRAFT:
        if held.number != number:
            raise conflict(f"invoice {invoice_id!r} has number {held.number}, not {number}")
        return Decision([], held)
    event = InvoiceIssued(
        **recorded_now(current.corporation_id, now, origin),
        payload=InvoiceIssuedPayload(
            invoice_id=invoice_id,
            corporation_id=current.corporation_id,
            number=number,
            issue_date=issue_date,
            due_date=issue_date + timedelta(days=held.payment_term_days),
            at=now,
        ),
    )
    return _invoice_decided(current, invoice_id, [event])


class InvoicePayment(BaseModel):
    """``POST /ops/invoices/{id}/paid``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    paid_on: date | None = None  # today (UTC) when not given
    reference: Annotated[str, Field(max_length=200)] | None = None


class InvoiceVoiding(BaseModel):
    """``POST /ops/invoices/{id}/void``: a reason is required."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: Annotated[str, Field(min_length=1, max_length=500)]


def decide_paid(
    state: CorporationState | None,
    *,
    invoice_id: str,
    body: InvoicePayment,
    origin: Origin,
    now: datetime,
) -> Decision[InvoiceState]:
    """ISSUED -> PAID; a paid invoice again records nothing."""
    current, held = _invoice(state, invoice_id)
    if held.status is InvoiceStatus.PAID:
        return Decision([], held)
    if held.status is not InvoiceStatus.ISSUED:
        raise conflict(f"invoice {invoice_id!r} is {held.status.value}: it cannot be paid")
    event = InvoicePaid(
        **recorded_now(current.corporation_id, now, origin),
        payload=InvoicePaidPayload(
            invoice_id=invoice_id,
            corporation_id=current.corporation_id,
            paid_on=body.paid_on or now.astimezone(UTC).date(),
            reference=body.reference,
            at=now,
        ),
    )
    return _invoice_decided(current, invoice_id, [event])


def decide_void(
    state: CorporationState | None,
    *,
    invoice_id: str,
    body: InvoiceVoiding,
    origin: Origin,
    now: datetime,
) -> Decision[InvoiceState]:
    """ISSUED -> VOID, keeping the number; a void invoice again records
    nothing. A paid invoice is not voided (a credit note refunds it), and a
    draft is not either (finish the month's close first)."""
    current, held = _invoice(state, invoice_id)
    if held.status is InvoiceStatus.VOID:
        return Decision([], held)
    if held.status is not InvoiceStatus.ISSUED:
        raise conflict(f"invoice {invoice_id!r} is {held.status.value}: it cannot be voided")
    if held.credited_count or held.reserved_net:
        # Voiding would cancel what its credit notes credit a second time.
        raise conflict(f"invoice {invoice_id!r} has credit notes: it cannot be voided")
    event = InvoiceVoided(
        **recorded_now(current.corporation_id, now, origin),
        payload=InvoiceVoidedPayload(
            invoice_id=invoice_id, corporation_id=current.corporation_id, reason=body.reason, at=now
        ),
    )
    return _invoice_decided(current, invoice_id, [event])


def shown_invoice(invoice: InvoiceState) -> dict[str, Any]:
    return invoice.model_dump(mode="json")


# --- invoice e-mails (issue 14, part D; docs/adr/0040) -----------------------------

InvoiceMailEvents = (InvoiceMailingRequested, InvoiceMailed)


def _with_source(
    state: CorporationState, event: InvoiceDrafted | InvoiceIssued | InvoicePaid | InvoiceVoided
) -> CorporationState:
    """Keep what an invoice's files are rendered from: the draft's content
    and the issue's number and dates; the issue also asks for the first
    mailing."""
    if isinstance(event, InvoiceDrafted):
        drafted = event.payload.model_copy(update={"charge_keys": [], "reversal_keys": []})
        source = InvoiceSource(drafted=drafted)
    elif isinstance(event, InvoiceIssued):
        held = state.invoice_sources.get(event.payload.invoice_id)
        if held is None:
            return state
        first = Mailing(mailing_id=FIRST_MAILING, requested_at=event.payload.at)
        source = held.model_copy(
            update={"issued": event.payload, "mailings": {FIRST_MAILING: first}}
        )
    else:
        return state
    return state.model_copy(
        update={"invoice_sources": {**state.invoice_sources, source.drafted.invoice_id: source}}
    )


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


def invoice_source(state: CorporationState | None, invoice_id: str) -> InvoiceSource:
    """An issued (or paid, or void) invoice's source; ``RefusedError`` 404
    for an unknown invoice and 409 for a draft (it has no number yet)."""
    _, held = _invoice(state, invoice_id)
    assert state is not None
    source = state.invoice_sources.get(invoice_id)
    if held.status is InvoiceStatus.DRAFT or source is None or source.issued is None:
        raise conflict(f"invoice {invoice_id!r} is a draft: it has no number and no documents yet")
    return source


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
    after = evolve(state, event)
    assert after is not None
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
    after = evolve(state, event)
    assert after is not None
    return Decision([event], after.invoice_sources[invoice_id])


def shown_mailings(source: InvoiceSource) -> list[dict[str, Any]]:
    """An invoice's mailings in the order they were requested (the log's:
    the map keeps it), as the ops API shows them."""
    return [m.model_dump(mode="json") for m in source.mailings.values()]


# --- credit notes (issue 14, part E; docs/adr/0041) -----------------------------

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


def _evolve_credit_note(state: CorporationState, event: CreditNoteEvent) -> CorporationState:
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
    current, invoice = _invoice(state, invoice_id)
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


def _credit_note(
    state: CorporationState | None, credit_note_id: str
) -> tuple[CorporationState, CreditNoteState]:
    current = _require(state, corporation_of_credit_note(credit_note_id))
    held = current.credit_notes.get(credit_note_id)
    if held is None:
        raise unknown(f"credit note {credit_note_id!r}")
    return current, held


def _credit_note_decided(
    state: CorporationState, credit_note_id: str, events: list[BillingEvent]
) -> Decision[CreditNoteState]:
    after = state
    for event in events:
        after = evolve(after, event) or after
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
    current, held = _credit_note(state, credit_note_id)
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
    current, held = _credit_note(state, credit_note_id)
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
    current, held = _credit_note(state, credit_note_id)
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
    current, note = _credit_note(state, credit_note_id)
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
    current, held = _credit_note(state, credit_note_id)
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
    after = evolve(current, event)
    assert after is not None
    return Decision([event], after.credit_notes[credit_note_id])
