"""Sessions module objects (OCPI 2.2.1, mod_sessions.asciidoc).

Session, ChargingPreferences and the module's enums. CdrToken and
AuthMethod, which mod_sessions takes from mod_cdrs, live in
``schemas.ocpi.cdrs`` and are re-exported here. ChargingPeriod is the one
of ``schemas.ocpi.cdrs``; ``kwh`` and ``total_cost`` are exact Decimals
(``tariffs.ExactNumber``, ``Price``).

PATCH bodies (mod_sessions, "PATCH Method"): ``validate_session_patch``
checks a fragment field by field. A field absent is unchanged, ``null``
clears an optional field, ``last_updated`` is required. What differs from
Locations is ``charging_periods``: in a PATCH they are *added* to the stored
ones (an empty list changes nothing); in a PUT they replace them (see
``merge_session_patch``).

Fields are declared in the spec's order; optional fields default to ``None``
and are left out of a dump by ``types.to_json``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import replace
from enum import StrEnum
from types import MappingProxyType
from typing import Annotated, Any

from pydantic import StringConstraints, model_validator

from schemas.ocpi.cdrs import AuthMethod, CdrToken, ChargingPeriod
from schemas.ocpi.common import CountryCode, DateTime, OcpiModel, PartyId, parse_ocpi_datetime
from schemas.ocpi.patch import ValidatedPatch, validate_patch_body
from schemas.ocpi.tariffs import NonNegativeNumber, Price, loads_exact
from schemas.ocpi.types import Bool, ci, string, to_json

SessionId = Annotated[str, ci(36)]  # mod_sessions, Session.id: CiString(36)
# transport_and_format, "Not available": Session.evse_uid and connector_id may
# be "#NA" for a reservation that has no EVSE yet. It fits CiString(36).
NOT_AVAILABLE = "#NA"

# mod_sessions, Session.currency: string(3), ISO 4217 (three capital letters).
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


class SessionStatus(StrEnum):
    """mod_sessions, SessionStatus enum."""

    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    INVALID = "INVALID"
    PENDING = "PENDING"
    RESERVATION = "RESERVATION"


class ProfileType(StrEnum):
    """mod_sessions, ProfileType enum: the smart-charging profile a driver picks."""

    CHEAP = "CHEAP"
    FAST = "FAST"
    GREEN = "GREEN"
    REGULAR = "REGULAR"


class ChargingPreferencesResponse(StrEnum):
    """mod_sessions, ChargingPreferencesResponse enum."""

    ACCEPTED = "ACCEPTED"
    DEPARTURE_REQUIRED = "DEPARTURE_REQUIRED"
    ENERGY_NEED_REQUIRED = "ENERGY_NEED_REQUIRED"
    NOT_POSSIBLE = "NOT_POSSIBLE"
    PROFILE_TYPE_NOT_SUPPORTED = "PROFILE_TYPE_NOT_SUPPORTED"


class ChargingPreferences(OcpiModel):
    """mod_sessions, ChargingPreferences object."""

    profile_type: ProfileType
    departure_time: DateTime | None = None
    energy_need: NonNegativeNumber | None = None  # kWh
    discharge_allowed: Bool | None = None  # absent means false (spec default)


class Session(OcpiModel):
    """mod_sessions, Session object."""

    country_code: CountryCode  # of the CPO that owns the session
    party_id: PartyId
    id: SessionId
    # When the session became ACTIVE; while PENDING, when it was created.
    start_date_time: DateTime
    end_date_time: DateTime | None = None
    kwh: NonNegativeNumber
    cdr_token: CdrToken
    auth_method: AuthMethod
    authorization_reference: Annotated[str, ci(36)] | None = None
    location_id: Annotated[str, ci(36)]
    evse_uid: Annotated[str, ci(36)]
    connector_id: Annotated[str, ci(36)]
    meter_id: Annotated[str, string(255)] | None = None
    currency: Currency
    charging_periods: list[ChargingPeriod] | None = None
    total_cost: Price | None = None
    status: SessionStatus
    last_updated: DateTime

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> Session:
        if self.end_date_time is not None and self.end_date_time < self.start_date_time:
            raise ValueError("end_date_time must not be earlier than start_date_time")
        return self


def session_from_json(data: str | bytes) -> Session:
    """Parse a Session from JSON text keeping every number exactly as written."""
    return Session.model_validate(loads_exact(data))


# --------------------------------------------------------------------------
# PATCH (mod_sessions "PATCH Method"; transport_and_format "PATCH")
# --------------------------------------------------------------------------


def validate_session_patch(body: Any) -> ValidatedPatch:
    """Validate the body of a PATCH on a Session.

    Raises ``pydantic.ValidationError`` (OCPI 2001). ``charging_periods`` set
    to ``null`` is read like an empty list: nothing to add (the spec gives no
    way to remove periods but a PUT).
    """
    patch = validate_patch_body(Session, body, null_means_absent=frozenset({"charging_periods"}))
    if patch.values.get("charging_periods") == []:
        values = {k: v for k, v in patch.values.items() if k != "charging_periods"}
        return replace(patch, values=MappingProxyType(values))
    return patch


Json = dict[str, Any]


def merge_session_patch(session: Mapping[str, Any], patch: Mapping[str, Any]) -> Json:
    """``session`` (JSON form) with a validated PATCH body applied: absent
    fields unchanged, ``None`` removes the field, ``charging_periods``
    appended to the stored ones, any other field replaced whole.

    A period equal to one already held is not appended again: it is the
    same PATCH sent twice (a retry after an answer that was lost, which the
    write path tells the sender is safe; docs/adr/0027), not a new period
    (two periods cannot start at the same instant)."""
    result: Json = copy.deepcopy(dict(session))
    for name, value in patch.items():
        if name == "charging_periods":
            held = result.get("charging_periods") or []
            new = [period for period in value or () if period not in held]
            if new:
                result["charging_periods"] = [*held, *copy.deepcopy(new)]
        elif value is None:
            result.pop(name, None)
        else:
            result[name] = copy.deepcopy(value)
    return result


def is_older(current_last_updated: str | None, incoming_last_updated: str) -> bool:
    """True when a write is older than the stored session: it is recorded but
    changes nothing (docs/adr/0004). Equal timestamps are not older."""
    if current_last_updated is None:
        return False
    return parse_ocpi_datetime(incoming_last_updated) < parse_ocpi_datetime(current_last_updated)


__all__ = [
    "NOT_AVAILABLE",
    "AuthMethod",
    "CdrToken",
    "ChargingPeriod",
    "ChargingPreferences",
    "ChargingPreferencesResponse",
    "Currency",
    "ProfileType",
    "Session",
    "SessionId",
    "SessionStatus",
    "is_older",
    "merge_session_patch",
    "session_from_json",
    "to_json",
    "validate_session_patch",
]
