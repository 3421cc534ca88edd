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
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
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
    Address,
    BillingEvent,
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
    Email,
    InvitationMailed,
    InvitationMailedPayload,
    MemberActivated,
    MemberActivatedPayload,
    MemberInvited,
    MemberInvitedPayload,
    MemberStatus,
    PaymentMethod,
    Text,
)
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
    """What a later charge or reversal needs of a recorded charge."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    member_id: str
    amount: Decimal
    reversed_by: str | None = None


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
    members: dict[str, MemberState] = Field(default_factory=dict)
    # Every CDR charged, by CDR key: a CDR read twice is charged once, and a
    # Credit CDR finds the charge it reverses.
    charges: dict[str, ChargeState] = Field(default_factory=dict)
    registered_at: datetime
    updated_at: datetime


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
            update={"status": s.status, "status_reason": s.reason, "updated_at": s.at}
        )
    if isinstance(event, ChargeRecorded):
        c = event.payload
        charge = ChargeState(member_id=c.member_id, amount=c.amount)
        return state.model_copy(update={"charges": {**state.charges, c.cdr_key: charge}})
    if isinstance(event, ChargeReversed):
        r = event.payload
        held_charge = state.charges.get(r.cdr_key)
        if held_charge is None:
            # The Credit CDR came first (its key may be on another
            # partition): the original, when it comes, is charged nothing.
            held_charge = ChargeState(member_id=r.member_id or "", amount=Decimal(0))
        reversed_ = held_charge.model_copy(update={"reversed_by": r.credit_cdr_key})
        return state.model_copy(update={"charges": {**state.charges, r.cdr_key: reversed_}})
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
    "billing_corporations",
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
