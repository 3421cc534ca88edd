"""Sessions and CDRs objects of OCPI 2.1.1 (mod_sessions.md, mod_cdrs.md,
tag 2.1.1-d2).

Both embed the whole Location where the session took place (with only the
EVSE and Connector used) instead of naming it, name the token by its
``auth_id`` (no CdrToken), carry ``total_cost`` as a plain number (excl.
VAT; no Price), and have no owner party (the URL, or the poster, names it).
Session times are ``start_datetime``/``end_datetime``; a CDR's end is
``stop_date_time``. ChargingPeriod has no ``tariff_id``; CdrDimensionType
has six values, one of them (FLAT) unknown to 2.2.1.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from schemas.ocpi.common import DateTime, OcpiModel
from schemas.ocpi.tariffs import ExactNumber, NonNegativeNumber
from schemas.ocpi.types import ci, string
from schemas.ocpi.v211.locations import Location
from schemas.ocpi.v211.tariffs import Tariff

Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


def _names_its_evse(location: Location) -> Location:
    # "including only the relevant EVSE and Connector": the one EVSE (and
    # its first Connector) are how the session names where it took place.
    if not location.evses:
        raise ValueError("the location must include the EVSE (and Connector) used")
    return location


# The Location a Session or CDR embeds: a 2.1.1 Location with its EVSE.
EmbeddedLocation = Annotated[Location, AfterValidator(_names_its_evse)]


class AuthMethod(StrEnum):
    """2.1.1 AuthMethod enum (no COMMAND)."""

    AUTH_REQUEST = "AUTH_REQUEST"
    WHITELIST = "WHITELIST"


class SessionStatus(StrEnum):
    """2.1.1 SessionStatus enum (no RESERVATION)."""

    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    INVALID = "INVALID"
    PENDING = "PENDING"


class CdrDimensionType(StrEnum):
    """2.1.1 CdrDimensionType enum."""

    ENERGY = "ENERGY"
    FLAT = "FLAT"
    MAX_CURRENT = "MAX_CURRENT"
    MIN_CURRENT = "MIN_CURRENT"
    PARKING_TIME = "PARKING_TIME"
    TIME = "TIME"


class CdrDimension(OcpiModel):
    """2.1.1 CdrDimension class."""

    type: CdrDimensionType
    volume: ExactNumber


class ChargingPeriod(OcpiModel):
    """2.1.1 ChargingPeriod class (no tariff_id)."""

    start_date_time: DateTime
    dimensions: Annotated[list[CdrDimension], Field(min_length=1)]


class Session(OcpiModel):
    """2.1.1 Session Object."""

    id: Annotated[str, ci(36)]
    start_datetime: DateTime
    end_datetime: DateTime | None = None
    kwh: NonNegativeNumber
    auth_id: Annotated[str, ci(36)]
    auth_method: AuthMethod
    location: EmbeddedLocation
    meter_id: Annotated[str, string(255)] | None = None
    currency: Currency
    charging_periods: list[ChargingPeriod] | None = None
    total_cost: ExactNumber | None = None
    status: SessionStatus
    last_updated: DateTime


class Cdr(OcpiModel):
    """2.1.1 CDR Object."""

    id: Annotated[str, ci(36)]
    start_date_time: DateTime
    stop_date_time: DateTime
    auth_id: Annotated[str, ci(36)]
    auth_method: AuthMethod
    location: EmbeddedLocation
    meter_id: Annotated[str, string(255)] | None = None
    currency: Currency
    tariffs: list[Tariff] | None = None
    charging_periods: Annotated[list[ChargingPeriod], Field(min_length=1)]
    total_cost: ExactNumber
    total_energy: ExactNumber
    total_time: ExactNumber
    total_parking_time: ExactNumber | None = None
    remark: Annotated[str, string(255)] | None = None
    last_updated: DateTime
