"""A corporation and its contract (issue 14, docs/adr/0035, 1, 2 and 4):
what ops send to register one, the per-country check of its registration
number and VAT id (python-stdnum, before anything is decided), its
registration and its status (suspend, reinstate, close; a closed
corporation stays closed). Pure: no I/O, the clock passed in.
"""

from __future__ import annotations

import importlib
import re
import secrets
from datetime import datetime
from types import ModuleType
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from stdnum import get_cc_module
from stdnum.exceptions import (
    InvalidChecksum,
    InvalidComponent,
    InvalidFormat,
    InvalidLength,
    ValidationError,
)

from producers.billing.state import CorporationState, require_corporation
from producers.write_path import Decision, Origin, RefusedError, conflict, recorded_now
from schemas.events.billing import (
    Address,
    Contract,
    CorporationRegistered,
    CorporationRegisteredPayload,
    CorporationStatus,
    CorporationStatusChanged,
    CorporationStatusChangedPayload,
    Email,
    PaymentMethod,
    Text,
)
from schemas.ocpi.status_codes import OcpiStatus


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


CorporationEvents = (CorporationRegistered, CorporationStatusChanged)


def evolve_corporation(
    state: CorporationState | None, event: CorporationRegistered | CorporationStatusChanged
) -> CorporationState | None:
    """Fold the corporation's own events: its registration makes the state,
    a status change needs one."""
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
    s = event.payload
    return state.model_copy(
        update={
            "status": s.status,
            "status_reason": s.reason,
            "status_since": s.at,
            "updated_at": s.at,
        }
    )


_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def new_id() -> str:
    """A corporation or member id: 12 lower-case letters and digits (62 bits)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(12))


def _decided(
    state: CorporationState | None, events: list[CorporationRegistered | CorporationStatusChanged]
) -> Decision[CorporationState]:
    after = state
    for event in events:
        after = evolve_corporation(after, event)
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
    current = require_corporation(state, corporation_id)
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


def shown(state: CorporationState) -> dict[str, Any]:
    """A corporation as the ops API shows it (members listed apart)."""
    out = state.model_dump(mode="json", exclude={"members", "charges"})
    out["members"] = len(state.members)
    out["charges"] = len(state.charges)
    return out
